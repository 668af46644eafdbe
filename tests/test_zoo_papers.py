"""What is special to each paper: equations on hand-sized inputs, defaults, parameter counts."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import attnlab
from attnlab.layers.eca import eca_kernel_size
from attnlab.layers.fca import dct_basis
from attnlab.models.placement import paper_place

F64 = torch.float64


def make(name, channels, **kwargs):
    torch.manual_seed(0)
    return attnlab.create_attention(name, channels, dtype=F64, **kwargs)


def make_eval(name, channels, **kwargs):
    """``make`` in eval mode (the equation tests of the other tests/test_zoo_*.py files import both)."""
    return make(name, channels, **kwargs).eval()


BN_EVAL = 1 / math.sqrt(1 + 1e-5)  # an eval BN at its init: running mean 0, variance 1, weight 1, bias 0


# ---- parameter counts at C = 256, from each paper's definition of its module --------------------------
C, r16 = 256, 256 // 16
PARAMS_AT_256 = {
    "se": 2 * C * r16 + r16 + C,  # two FCs with biases
    "eca": 5,  # k = ψ(256) = 5, no bias
    # one 1×1 conv C -> C with a bias: youngwanLEE/CenterMask, maskrcnn_benchmark/modeling/backbone/vovnet.py,
    # eSEModule's nn.Conv2d(channel, channel, kernel_size=1, padding=0)
    "ese": C * C + C,
    "ceca": 5,  # timm's CecaModule: k = max(ψ(256), 3) = 5, no bias
    # MenghaoGuo/EANet, model_torch.py, External_attention: conv1 (bias), linear_0, linear_1 (S = 64), conv2, BN
    "external": 2 * C * C + C + 2 * 64 * C + 2 * C,
    # zhanghang1989/PyTorch-Encoding, encoding/models/sseg/encnet.py, EncModule (se_loss's selayer left out):
    # bias-free 1×1 conv + BN, Encoding's K = 32 codewords + scales, BN over K, the FC C -> C
    "encnet": C * C + 2 * C + 32 * C + 32 + 2 * 32 + C * C + C,
    "soca": 2 * C * r16 + r16 + C,  # daitao/SAN, TrainCode/model/san.py, SOCA's conv_du (reduction 16)
    # gbup-group/DIANet, models/cifar/dia_resnet.py, LSTMCell(C, C, 1): two small_cells C -> C/4 -> 4C
    "dia": 2 * (C * 64 + 64 + 64 * 4 * C + 4 * C),
    # Andrew-Qibin/SPNet, models/resnet.py, SPBlock(C, C): 3×1 and 1×3 convs + BNs, 1×1 conv with bias
    "strip_pool": 2 * 3 * C * C + 4 * C + C * C + C,
    "lcbam": 2 * C * r16 + 49 + 2,  # timm's LightCbamModule: bias-free MLP, bias-free 7×7 conv, BN
    "ecam": 2 * 32 + 5 * 32 + 1,  # timm's EcaModule(use_mlp=True): d = 256/8 = 32; 1×1 conv 1 -> d, k-wide d -> 1
    "gct": 3 * C,  # α, γ, β
    "srm": 2 * C + 2 * C,  # CFC + BN
    "fca": 2 * C * r16,  # bias-free FCs; DCT filters are buffers
    "ge": 3 * 9 * C + 3 * 2 * C + 2 * C * r16 + r16 + C,  # 3 depth-wise convs + BNs (extent 8), MLP
    "non_local": 3 * (C * 128 + 128) + 128 * C + C + 2 * C,  # θ, φ, g, W_z, BN
    "gc": C + 1 + C * r16 + r16 + 2 * r16 + r16 * C + C,  # W_k, W_v1, LayerNorm, W_v2
    # timm, layers/global_context.py, GlobalContext(fuse_add=True, fuse_scale=False): d = 256/8 = 32
    "gca": C + 1 + C * 32 + 32 + 2 * 32 + 32 * C + C,
    # timm, layers/coord_attn.py, SimpleCoordAttn: d = make_divisible(256/4 · 2/3 = 42.7, 8) = 40; fc1, fc_h, fc_w
    "scoord": C * 40 + 40 + 2 * (40 * C + C),
    "ela": 2 * 7 * C + 2 * 2 * C,  # timm, layers/coord_attn.py, EfficientLocalAttn: 2 depth-wise k = 7 convs, 2 GNs
    "strip": 2 * 3 * C,  # timm, layers/coord_attn.py, StripAttn: 2 bias-free depth-wise k = 3 convs
    "cc": 2 * (C * 32 + 32) + C * C + C + 1,  # Q, K, V, γ
    "mhsa": 3 * C * C + 2 * (2 * 64 - 1) * (C // 4),  # q, k, v; relative tables (max_size 64)
    # timm, layers/lambda_layer.py, LambdaLayer(256): qkv (h·k + k + v, v = 64), norm_q, norm_v, the r = 9 Conv3d
    "lambda": C * (4 * 16 + 16 + 64) + 2 * 64 + 2 * 64 + 16 * 81 + 16,
    # timm, layers/halo_attn.py, HaloAttn(256): q, kv (d = d_v = 32), height_rel, width_rel (2·14 − 1, 32)
    "halo": C * C + C * 2 * C + 2 * 27 * 32,
    # BA-Transform/BAT-Image-Classification, model_zoo/non_local.py, BATBlock(256) (r = 2, s = 7, k = 4): conv1 + BN,
    # BATransform's conv1 + BN, conv_p, conv_q, conv2 + BN, then conv2 + BN; every conv with a bias
    "bat": (C * 128 + 128 + 2 * 128)
    + (128 * 4 + 4 + 2 * 4)
    + 2 * (49 * 4 * 4 * 7 + 49 * 4)
    + (128 * 128 + 128 + 2 * 128)
    + (128 * C + C + 2 * C),
    # Visual-Attention-Network/VAN-Classification, models/van.py, Attention(256): proj_1, LKA (5×5 DW, 7×7 DW d 3,
    # 1×1), proj_2, all biased
    "lka": 3 * (C * C + C) + (25 * C + C) + (49 * C + C),
    # MCG-NKU/SCNet, scnet.py, SCBottleneck's k1 + SCConv(128, 128) (k2, k3, k4): four bias-free 3×3 convs + BNs
    "scconv": 4 * (9 * (C // 2) ** 2 + 2 * (C // 2)),
    # kaijieshi7/Dynamic-convolution-Pytorch, dynamic_conv.py, Dynamic_conv2d(256, 256, 3, bias=False, K=4) with the
    # paper's hidden width C/4 (the code's int(C/4) + 1), + the BN after it
    "dynconv": 4 * 9 * C * C + C * 64 + 64 * 4 + 4 + 2 * C,
    # PyTorch STN tutorial's fc_loc (Linear(·, 32), ReLU, Linear(32, 6)) on a 4×4 adaptive pool of C channels
    "stn": 16 * C * 32 + 32 + 32 * 6 + 6,
    # MenghaoGuo/Awesome-Vision-Attentions, code/spatial_attentions/attention_augmented_module.py, AugmentedConv
    # (conv_out, qkv_conv, attn_out, biased) at dk = 160 (20 per head), dv = 24, Nh = 8; learned tables
    # (2·64 − 1, 20) ×2; the BN
    "aa": 9 * C * (C - 24) + (C - 24) + C * 344 + 344 + 24 * 24 + 24 + 2 * 127 * 20 + 2 * C,
    # YOLOonMe/EMA-attention-module, EMA_attention_module, EMA(256): G = 32, c = 8; conv1x1, conv3x3 (biases), GN
    "ema": (8 * 8 + 8) + (9 * 8 * 8 + 8) + 2 * 8,
    # sail-sg/volo, models/volo.py, OutlookAttention(256, 8 heads) (v bias-free; attn, proj with biases) + the
    # Outlooker's norm1 LayerNorm: n = 256/32 = 8 heads, k = 3
    "outlook": 2 * C + C * C + (C * 81 * 8 + 81 * 8) + (C * C + C),
    # csrhddlam/axial-deeplab, lib/models/axialnet.py, AxialAttention(256, 256, groups=8, kernel_size=56) twice
    # (height, width): qkv_transform, bn_qkv, bn_similarity, bn_output, relative (2·32, 2·56 − 1)
    "axial": 2 * (2 * C * C + 4 * C + 6 * 8 + 4 * C + 2 * 32 * 111),
    "a2": C * (64 + 2 * 64) + 3 * 64 + 64 * C + C,  # φ, θ, ρ (c_m = c_n = C/4), W_z
    "cbam": 2 * C * r16 + r16 + C + 2 * 49 + 2,  # shared MLP, 7×7 conv, BN
    "bam": (2 * C * r16 + 3 * r16 + C) + (C * r16 + 18 * r16 * r16 + 10 * r16 + 1),
    "scse": 2 * C * 128 + 128 + C + C + 1,  # cSE (r = 2), sSE
    "coord": C * 8 + 8 + 2 * 8 + 2 * (8 * C + C),  # mip = max(8, 256 / 32) = 8
    "triplet": 3 * (2 * 49 + 2),
    "simam": 0,
    "danet": 2 * (C * 32 + 32) + C * C + C + 2,
    "sk": 2 * (9 * C * C // 32 + 2 * C) + C * 32 + 2 * 32 + 32 * 2 * C,  # d = max(256/16, 32) = 32
    # temporal (T = 8 frames by default): global branch FCs + BN, local branch convs + BN (β = 4)
    "tam": 8 * 16 + 2 * 16 + 16 * 3 + 3 * C * (C // 4) + 2 * (C // 4) + (C // 4) * C,
    # reduce to d = C/4, 3 dilated convs d -> d (k = 3, no bias), the non-local TSA (θ, φ, g, W_z, BN)
    "gltr": C * 64 + 64 + 3 * 3 * 64 * 64 + 3 * (C * 128 + 128) + 128 * C + C + 2 * C,
    "non_local_st": 3 * (C * 128 + 128) + 128 * C + C + 2 * C,  # as non_local: θ, φ, g, W_z, BN
    "splat": 9 * C * 2 * C // 2 + 2 * 2 * C + C * 128 + 128 + 2 * 128 + 128 * 2 * C + 2 * C,  # inter 128
    # NVlabs/SegFormer, mmseg/models/backbones/mix_transformer.py, Attention(C, 2 heads, qkv_bias, sr_ratio=4):
    # q, kv, proj Linear with biases; sr 4×4 conv stride 4 with bias; LayerNorm
    "sra": 4 * C * C + 4 * C + 16 * C * C + C + 2 * C,
    # Gsunshine/Enjoy-Hamburger, seg/HamNet/hamburger/burger.py, HamburgerV1 (D = C): lower bread conv with bias,
    # upper bread conv without + BN; ham.py's NMF2D bases are a buffer
    "ham": C * C + C + C * C + 2 * C,
    # HRNet/HRNet-Semantic-Segmentation, lib/models/seg_hrnet_ocr.py: aux_head (K = 19), SpatialOCR_Module's
    # ObjectAttentionBlock2D (f_pixel, f_object, f_down, f_up; key C/2) and conv_bn_dropout (2C -> C)
    "ocr": (C * C + 3 * C + C * 19 + 19)
    + 2 * (C * 128 + 128 * 128 + 4 * 128)
    + (C * 128 + 256)
    + (128 * C + 2 * C)
    + (2 * C * C + 2 * C),
    "shuffle": 6 * (C // 128),  # wofmanaf/SA-Net, models/sa_resnet.py, sa_layer(C, 64): 4 c-vectors, GN; c = C/128
    "sge": 2 * 64,  # implus/PytorchInsight, classification/models/imagenet/resnet_sge.py, SpatialGroupEnhance(64)
    # DeLightCMU/PSA, semantic-segmentation/network/PSA.py, PSA_p: W_q C -> 1; W_v, W_z, W_q', W_v' C·C/2 each
    "psa": C + 4 * C * (C // 2),
    # murufeng/EPSANet, models/epsanet.py, PSAModule: k² C (C/4) / G for (3, 1), (5, 4), (7, 8), (9, 16), bias-free;
    # models/SE_weight_module.py, SEWeightModule(C/4): 64 -> 4 -> 64 with biases
    "epsa": sum(k * k * C * (C // 4) // g for k, g in ((3, 1), (5, 4), (7, 8), (9, 16))) + 2 * 64 * 4 + 4 + 64,
    # JDAI-CV/CoTNet, models/cotnet.py, CotLayer(C, 3): key conv (4 groups) + BN; embed 2C -> C/2 + BN -> 9C/8 (bias)
    # + GroupNorm; 1×1 value conv + BN; BN; SE C -> 128 (bias) + BN -> 2C (bias)
    "cot": (9 * C * C // 4 + 2 * C)
    + (2 * C * C // 2 + C + (C // 2) * (9 * C // 8) + 9 * C // 8 + 2 * 9 * C // 8)
    + (C * C + 2 * C)
    + 2 * C
    + (C * 128 + 128 + 2 * 128 + 128 * 2 * C + 2 * C),
}


def test_parameter_table_covers_the_registry():
    assert set(PARAMS_AT_256) == set(attnlab.list_attentions())


@pytest.mark.parametrize(("name", "expected"), sorted(PARAMS_AT_256.items()))
def test_parameter_count_at_256_channels(name, expected):
    assert attnlab.attention_info(name).num_params(256) == expected


# ---- channel ------------------------------------------------------------------------------------------
def test_ceca_wraps_the_first_channel_around_to_the_last():
    m = make("ceca", 4)  # k = max(ψ(4), 3) = 3
    with torch.no_grad():
        m.conv.weight.copy_(torch.tensor([1.0, 0, 0]).view(1, 1, 3))  # each channel's left neighbour
    x = torch.arange(1.0, 5.0, dtype=F64).view(1, 4, 1, 1).expand(1, 4, 2, 3).contiguous()  # means 1, 2, 3, 4
    # circular: channel 0's left neighbour is channel 3 (zero padding, ECA's, would give it 0)
    assert torch.equal(m(x), x * torch.sigmoid(torch.tensor([4.0, 1, 2, 3], dtype=F64)).view(1, 4, 1, 1))


def test_ecam_lifts_each_pooled_channel_through_a_relu():
    m = make("ecam", 8)  # d = 8, k = 3
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.conv.weight[0] = 1.0  # h_0 = y, the other 7 rows 0
        m.conv2.weight[0, 0, 1] = 1.0  # w = σ(ReLU(h_0)) at the kernel's centre
    means = torch.tensor([-1.0, 2, 0.5, -3, 1, 0, 4, -0.25], dtype=F64)
    x = means.view(1, 8, 1, 1).expand(2, 8, 3, 2).contiguous()
    assert torch.equal(m(x), x * torch.sigmoid(means.clamp(min=0)).view(1, 8, 1, 1))


def test_lcbam_averages_each_gates_two_poolings_first():
    m = make("lcbam", 2, reduction=2).eval()  # one hidden unit
    with torch.no_grad():
        m.mlp.fc1.weight.copy_(torch.tensor([1.0, 1.0]).view(1, 2, 1, 1))
        m.mlp.fc2.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        m.conv.weight.zero_()
        m.conv.weight[0, 0, 3, 3] = 2.0  # the 7×7 kernel's centre: the spatial logit is 2·z_s (BN at its init)
    x = torch.tensor([[[[1.0, 3.0]], [[-2.0, 0.0]]]], dtype=F64)  # (1, 2, 1, 2)
    pooled = 0.5 * torch.tensor([2.0, -1.0]) + 0.5 * torch.tensor([3.0, 0.0])  # (2.5, -0.5)
    hidden = max(pooled.sum().item(), 0.0)  # ReLU(2.5 - 0.5) = 2
    xc = x * torch.sigmoid(torch.tensor([hidden, -hidden], dtype=F64)).view(1, 2, 1, 1)
    zs = 0.5 * xc.mean(1, keepdim=True) + 0.5 * xc.amax(1, keepdim=True)
    bn = 2 * zs / math.sqrt(1 + 1e-5)  # eval BN: running mean 0, variance 1
    torch.testing.assert_close(m(x), xc * torch.sigmoid(bn), rtol=0, atol=1e-12)


def test_ese_is_one_fc_and_a_hard_sigmoid_on_known_weights():
    m = make("ese", 3)
    with torch.no_grad():
        m.fc.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 2, 0], [1, 1, 1]]).view(3, 3, 1, 1))
        m.fc.bias.copy_(torch.tensor([0.0, -1.0, -9.0]))
    x = torch.tensor([[[[2.0, 4.0]], [[0.5, 1.5]], [[-3.0, 3.0]]]], dtype=F64)  # (1, 3, 1, 2); means 3, 1, 0
    # W z + b = (3, 1, -5); hσ = ReLU6(t + 3) / 6 = (1, 4/6, 0)
    gate = torch.tensor([1.0, 4 / 6, 0.0], dtype=F64).view(1, 3, 1, 1)
    assert torch.equal(m(x), x * gate)


def test_se_with_known_weights():
    m = make("se", 4, reduction=2)
    with torch.no_grad():
        m.fc.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1]]).view(2, 4, 1, 1))
        m.fc.fc1.bias.copy_(torch.tensor([0.0, -1.0]))
        m.fc.fc2.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 1], [-1, 0]]).view(4, 2, 1, 1))
        m.fc.fc2.bias.zero_()
    x = torch.arange(16, dtype=F64).view(1, 4, 2, 2)  # channel means 1.5, 5.5, 9.5, 13.5
    z1, z2 = 1.5, max(13.5 - 1.0, 0.0)  # ReLU(W1 z + b1)
    s = torch.sigmoid(torch.tensor([z1, z2, z1 + z2, -z1], dtype=F64))
    torch.testing.assert_close(m(x), x * s.view(1, 4, 1, 1))


@pytest.mark.parametrize(("channels", "k"), [(64, 3), (256, 5), (512, 5), (2048, 7)])
def test_eca_kernel_size_adapts_to_channels(channels, k):
    assert eca_kernel_size(channels) == k
    assert attnlab.create_attention("eca", channels).conv.kernel_size == (k,)


def test_eca_is_a_1d_conv_across_pooled_channels():
    m = make("eca", 8, kernel_size=3)
    with torch.no_grad():
        m.conv.weight.copy_(torch.tensor([[[1.0, 0.0, -1.0]]]))
    x = torch.randn(2, 8, 3, 3, dtype=F64)
    y = x.mean(dim=(2, 3))
    padded = torch.nn.functional.pad(y, (1, 1))
    conv = padded[:, :-2] - padded[:, 2:]  # w = [1, 0, -1]: y[c-1] - y[c+1]
    torch.testing.assert_close(m(x), x * torch.sigmoid(conv)[:, :, None, None])


def test_gct_is_identity_at_init_and_follows_its_equations():
    m = make("gct", 6)
    x = torch.randn(2, 6, 4, 4, dtype=F64)
    torch.testing.assert_close(m(x), x)
    with torch.no_grad():
        m.alpha.fill_(2.0)
        m.gamma.fill_(0.5)
        m.beta.fill_(-0.1)
    s = 2.0 * (x.square().sum(dim=(2, 3)) + 1e-5).sqrt()  # (B, C)
    s_hat = math.sqrt(6) * s / (s.square().sum(dim=1, keepdim=True) + 6e-5).sqrt()
    torch.testing.assert_close(m(x), x * (1 + torch.tanh(0.5 * s_hat - 0.1))[:, :, None, None])


def test_srm_style_pooling_and_channelwise_fc():
    m = make("srm", 3).eval()
    with torch.no_grad():
        m.cfc.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]]))
    x = torch.randn(2, 3, 4, 5, dtype=F64)
    mu, sigma = x.mean(dim=(2, 3)), x.std(dim=(2, 3), correction=0)
    z = torch.stack([mu[:, 0], sigma[:, 1], 0.5 * mu[:, 2] - 0.5 * sigma[:, 2]], dim=1)
    z = z / math.sqrt(1 + 1e-5)  # eval BN with fresh running statistics
    torch.testing.assert_close(m(x), x * torch.sigmoid(z)[:, :, None, None], rtol=1e-5, atol=1e-5)


def test_fca_dct_bases_are_orthonormal_and_lowest_frequency_is_average_pooling():
    basis = torch.stack([dct_basis(u, 7) for u in range(7)])
    torch.testing.assert_close(basis @ basis.T, torch.eye(7, dtype=F64))
    m = make("fca", 16, num_freq=1)
    torch.testing.assert_close(m.dct_weight, torch.full((16, 7, 7), 1 / 7, dtype=F64))
    m16 = make("fca", 32)  # 16 frequencies, 2 channels each
    assert torch.equal(m16.dct_weight[0], m16.dct_weight[1]) and not torch.equal(m16.dct_weight[1], m16.dct_weight[2])


def test_ge_parameter_free_global_gather_is_a_mean_gate():
    m = make("ge", 4, extent=0, extra_params=False, use_mlp=False)
    x = torch.randn(2, 4, 5, 3, dtype=F64)
    torch.testing.assert_close(m(x), x * torch.sigmoid(x.mean(dim=(2, 3), keepdim=True)))
    with pytest.raises(ValueError, match="extent"):
        attnlab.create_attention("ge", 4, extent=3)


# ---- spatial ------------------------------------------------------------------------------------------
def test_non_local_is_identity_at_init_and_embedded_gaussian_after():
    m = make("non_local", 8).eval()
    x = torch.randn(2, 8, 3, 4, dtype=F64)
    torch.testing.assert_close(m(x), x)
    with torch.no_grad():
        m.bn.weight.fill_(1.0)
    theta, phi, g = m.attn.qkv(x).flatten(2).split([4, 4, 4], dim=1)  # (B, 4, N)
    f = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (B, N, N): no scaling
    y = (f @ g.transpose(1, 2)).transpose(1, 2).reshape(2, 4, 3, 4)
    torch.testing.assert_close(m(x), x + m.bn(m.attn.proj(y)))
    sub = make("non_local", 8, sub_sample=True).eval()
    assert sub(torch.randn(1, 8, 6, 6, dtype=F64)).shape == (1, 8, 6, 6)


def test_gc_attention_pooling_and_transform():
    m = make("gc", 16).eval()
    x = torch.randn(2, 16, 3, 3, dtype=F64)
    torch.testing.assert_close(m(x), x)  # last conv zero: identity at init
    torch.nn.init.normal_(m.transform[-1].weight)
    a = torch.softmax(m.conv_mask(x).flatten(1), dim=-1)  # (B, N)
    context = torch.einsum("bcn,bn->bc", x.flatten(2), a)[:, :, None, None]
    torch.testing.assert_close(m(x), x + m.transform(context))


def test_cc_attends_over_row_and_column_once():
    m = make("cc", 8, recurrence=1)
    with torch.no_grad():
        m.gamma.fill_(1.0)
    x = torch.randn(1, 8, 3, 4, dtype=F64)
    q, k, v = m.query(x)[0], m.key(x)[0], m.value(x)[0]
    out = torch.empty_like(x[0])
    for i, j in itertools.product(range(3), range(4)):
        keys = [(i, jj) for jj in range(4)] + [(ii, j) for ii in range(3) if ii != i]  # self once
        e = torch.stack([q[:, i, j] @ k[:, a, b] for a, b in keys])
        w = torch.softmax(e, dim=0)
        out[:, i, j] = sum(w[n] * v[:, a, b] for n, (a, b) in enumerate(keys))
    torch.testing.assert_close(m(x)[0], out + x[0])


def test_mhsa_relative_logits_match_brute_force():
    m = make("mhsa", 8, num_heads=2, max_size=5)
    x = torch.randn(1, 8, 3, 4, dtype=F64)
    q, k, v = (t.view(2, 4, 12) for t in m.attn.qkv(x)[0].flatten(1).split(8, dim=0))  # (heads, d, N)
    out = torch.empty(2, 4, 12, dtype=F64)
    for h in range(2):
        logits = torch.empty(12, 12, dtype=F64)
        for n1, n2 in itertools.product(range(12), range(12)):
            (i1, j1), (i2, j2) = divmod(n1, 4), divmod(n2, 4)
            r = m.rel_h[i2 - i1 + 4] + m.rel_w[j2 - j1 + 4]
            logits[n1, n2] = q[h, :, n1] @ (k[h, :, n2] + r) / 2.0  # √d = 2
        out[h] = v[h] @ torch.softmax(logits, dim=-1).T
    torch.testing.assert_close(m(x)[0], out.reshape(8, 3, 4))
    with pytest.raises(ValueError, match="max_size"):
        m(torch.randn(1, 8, 6, 6, dtype=F64))


def test_a2_gathers_then_distributes():
    m = make("a2", 8, c_m=3, c_n=2)
    x = torch.randn(2, 8, 3, 3, dtype=F64)
    a, b, v = m.convs(x).flatten(2).split([3, 2, 2], dim=1)
    b, v = torch.softmax(b, dim=-1), torch.softmax(v, dim=1)
    assert torch.allclose(b.sum(-1), torch.ones(2, 2, dtype=F64)) and torch.allclose(
        v.sum(1), torch.ones(2, 9, dtype=F64)
    )
    z = torch.einsum("bmn,bkn,bkp->bmp", a, b, v).view(2, 3, 3, 3)
    torch.testing.assert_close(m(x), x + m.proj(z))


# ---- channel & spatial --------------------------------------------------------------------------------
def test_cbam_maps_have_the_papers_shapes():
    m = make("cbam", 32).eval()
    maps = {}
    m.channel_gate.gate.register_forward_hook(lambda mod, i, o: maps.__setitem__("channel", o))
    m.spatial_gate.gate.register_forward_hook(lambda mod, i, o: maps.__setitem__("spatial", o))
    x = torch.randn(2, 32, 5, 7, dtype=F64)
    y = m(x)
    assert maps["channel"].shape == (2, 32, 1, 1) and maps["spatial"].shape == (2, 1, 5, 7)
    torch.testing.assert_close(y, x * maps["channel"] * maps["spatial"])
    assert m.spatial_gate.conv.kernel_size == (7, 7)


def test_cbam_max_pools_route_gradients_as_the_official_code():
    # The official code takes F.max_pool2d over the whole map and torch.max(x, 1)[0] over channels: on a tie
    # the gradient goes to one element (amax would split it). Channels 0 and 1 tie at the maximum of every
    # position, positions (0, 0) and (0, 1) at the maximum of every channel.
    m = make("cbam", 32)
    x = torch.randn(2, 32, 5, 7, dtype=F64)
    x[:, :2] = 6.0 + x[:, :1]
    x[..., 0, :2] = 9.0
    x.requires_grad_(True)
    mlp, sp = m.channel_gate.mlp, m.spatial_gate
    official = {
        "channel": lambda x: torch.sigmoid(mlp(x.mean(dim=(2, 3), keepdim=True)) + mlp(F.max_pool2d(x, x.shape[2:]))),
        "spatial": lambda x: torch.sigmoid(
            sp.bn(sp.conv(torch.cat([torch.max(x, 1)[0][:, None], x.mean(1)[:, None]], 1)))
        ),
    }
    for name, reference in official.items():
        ours = getattr(m, f"{name}_gate")(x)
        w = torch.randn_like(ours)
        (got,) = torch.autograd.grad((ours * w).sum(), x)
        (want,) = torch.autograd.grad((reference(x) * w).sum(), x)
        torch.testing.assert_close(got, want, msg=name)


def test_bam_is_residual_one_plus_sigmoid_of_the_branch_product():
    m = make("bam", 32).eval()
    x = torch.randn(2, 32, 6, 6, dtype=F64)
    m_c = m.channel_att(x.mean(dim=(2, 3)))[:, :, None, None]
    m_s = m.spatial_att(x)
    torch.testing.assert_close(m(x), x * (1 + torch.sigmoid(m_c * m_s)))
    assert paper_place("bam").placement == "stage"


def test_scse_adds_channel_and_spatial_excitations():
    m = make("scse", 8)
    x = torch.randn(2, 8, 4, 4, dtype=F64)
    cse = torch.sigmoid(m.cse(x.mean(dim=(2, 3), keepdim=True)))
    sse = torch.sigmoid(m.sse(x))
    torch.testing.assert_close(m(x), x * cse + x * sse)


def test_coord_gates_factor_along_height_and_width():
    m = make("coord", 16).eval()
    maps = {}
    for k in ("h", "w"):
        m.gates[k].register_forward_hook(lambda mod, i, o, k=k: maps.__setitem__(k, o))
    x = torch.randn(2, 16, 5, 7, dtype=F64)
    torch.testing.assert_close(m(x), x * maps["h"] * maps["w"])
    assert maps["h"].shape == (2, 16, 5, 1) and maps["w"].shape == (2, 16, 1, 7)


def test_triplet_averages_three_rotated_branches():
    m = make("triplet", 4).eval()
    x = torch.randn(2, 4, 5, 6, dtype=F64)
    g_cw = m.cw(x.transpose(1, 2)).transpose(1, 2)  # gate over (C, W)
    g_hc = m.hc(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)  # gate over (H, C)
    g_hw = m.hw(x)
    torch.testing.assert_close(m(x), (x * g_cw + x * g_hc + x * g_hw) / 3)


def test_simam_matches_the_energy_function():
    m = attnlab.create_attention("simam", 1)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=F64)
    lam, mu = 1e-4, 2.5
    var = ((x - mu) ** 2).sum() / 3  # over the M = H·W − 1 other neurons
    energy = 4 * (var + lam) / ((x - mu) ** 2 + 2 * var + 2 * lam)  # Eq. 6: e_t*
    torch.testing.assert_close(m(x), x * torch.sigmoid(1 / energy))
    assert sum(p.numel() for p in m.parameters()) == 0


def test_danet_sums_position_and_channel_attention():
    m = make("danet", 16)
    x = torch.randn(2, 16, 3, 4, dtype=F64)
    torch.testing.assert_close(m(x), x)  # α = β = 0
    with torch.no_grad():
        m.alpha.fill_(0.7)
        m.beta.fill_(0.3)
    flat = x.flatten(2)
    energy = flat @ flat.transpose(1, 2)
    cam = (torch.softmax(energy.amax(-1, keepdim=True) - energy, dim=-1) @ flat).view_as(x)
    q, k, v = m.position.qkv(x).flatten(2).split([2, 2, 16], dim=1)
    pam = (v @ torch.softmax(q.transpose(1, 2) @ k, dim=-1).transpose(1, 2)).view_as(x)
    torch.testing.assert_close(m(x), x + 0.7 * pam + 0.3 * cam)


# ---- branch -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sk", "splat"])
def test_branch_weights_sum_to_one_and_stride_and_width_change(name):
    m = make(name, 32).eval()
    captured = []
    m.gate.register_forward_hook(lambda mod, i, o: captured.append(o))
    m(torch.randn(2, 32, 6, 6, dtype=F64))
    weights = captured[0].view(2, 2, 32)  # (B, branches, C)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 32, dtype=F64))
    wide = make(name, 32, out_channels=64, stride=2).eval()
    assert wide(torch.randn(1, 32, 8, 8, dtype=F64)).shape == (1, 64, 4, 4)


# ---- registry -----------------------------------------------------------------------------------------
def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="did you mean 'cbam'.*attnlab list attentions"):
        attnlab.get_attention("cbma")


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match=r"attention 'se' is already registered \(by SqueezeExcite\)"):
        attnlab.register_attention("se", category="channel", paper="p", venue="v", year=2020, url="https://x")(
            torch.nn.Identity
        )


def test_categories_filter_and_are_checked():
    assert set(attnlab.list_attentions("branch")) == {"sk", "splat", "epsa", "dynconv"}
    assert "cbam" in attnlab.list_attentions("channel_spatial") and "cbam" not in attnlab.list_attentions("channel")
    with pytest.raises(ValueError, match="category"):
        attnlab.list_attentions("chanel")


@pytest.mark.parametrize(
    ("name", "kwargs", "arg"),
    [("se", {"reduction": 0}, "reduction"), ("eca", {"kernel_size": 4}, "kernel_size"), ("splat", {}, "channels")],
)
def test_bad_arguments_name_themselves(name, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        attnlab.create_attention(name, 31 if name == "splat" else 16, **kwargs)


@pytest.mark.parametrize("name", ["cbam", "eca", "tam", "gltr"])
def test_an_even_kernel_width_is_refused(name):
    kwargs = {"num_frames": 4} if attnlab.attention_info(name).per_frame else {}
    with pytest.raises(ValueError, match="kernel_size: expected a positive odd int, got 4"):
        attnlab.create_attention(name, 32, kernel_size=4, **kwargs)
