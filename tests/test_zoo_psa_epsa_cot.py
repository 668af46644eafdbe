"""Polarized self-attention, EPSANet's pyramid squeeze attention, CoTNet's contextual transformer: each equation on a
hand-sized input with chosen weights, against plain tensor math; the rules where C does not fit their groupings."""

import math

import pytest
import torch
import torch.nn.functional as F
from test_zoo_papers import F64
from test_zoo_papers import make_eval as make

import attnlab
from attnlab.layers.cot import local_aggregate
from attnlab.models.placement import paper_place

BN = 1 / math.sqrt(1 + 1e-5)  # an eval BN at its init: running mean 0, variance 1, γ = 1, β = 0


def mat(conv):
    """A 1×1 conv's weight as a matrix (out, in)."""
    return conv.weight.detach()[:, :, 0, 0]


# ---- psa ----------------------------------------------------------------------------------------------
def test_psa_with_zero_queries_is_a_mean_pooled_se_plus_a_flat_spatial_gate():
    m = make("psa", 4)  # C/2 = 2
    with torch.no_grad():
        m.ch_wq.weight.zero_()  # softmax over N of zeros: every position 1/N
        m.sp_wq.weight.zero_()  # g = 0: the spatial logits are 0, their softmax over N is 1/N
        m.ch_wv.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0]]).view(2, 4, 1, 1))
        m.ch_wz.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [1, 1], [-1, 0]]).view(4, 2, 1, 1))
    x = torch.tensor([[[[1.0, 3.0]], [[0.0, 2.0]], [[-2.0, 2.0]], [[4.0, 0.0]]]], dtype=F64)  # (1, 4, 1, 2)
    z = torch.tensor([2.0, 1.0], dtype=F64)  # W_v x averaged over the two positions: x0 -> 2, x1 + x2 -> 1
    a_ch = torch.sigmoid(torch.stack([z[0], z[1], z[0] + z[1], -z[0]])).view(1, 4, 1, 1)
    a_sp = torch.sigmoid(torch.tensor(0.5, dtype=F64))  # σ(1/N), N = 2
    torch.testing.assert_close(m(x), x * a_ch + x * a_sp, rtol=0, atol=1e-12)


def psa_reference(m, x):
    """Both official layouts (PSA_p, PSA_s) in matrix products on the modules' weights."""
    B, C, H, W = x.shape
    X = x.reshape(B, C, H * W)

    def channel_only(X):
        q = torch.softmax(mat(m.ch_wq) @ X, dim=-1)  # (B, 1, N)
        z = (mat(m.ch_wv) @ X) @ q.transpose(1, 2)  # (B, C/2, 1)
        if m.layout == "parallel":
            logits = mat(m.ch_wz) @ z
        else:
            fc1, ln, _, fc2 = m.ch_wz
            h = mat(fc1) @ z + fc1.bias.view(-1, 1)
            h = (h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True) + ln.eps)
            h = (h * ln.weight.view(-1, 1) + ln.bias.view(-1, 1)).clamp(min=0)
            logits = mat(fc2) @ h + fc2.bias.view(-1, 1)
        return X * torch.sigmoid(logits)

    def spatial_only(X):
        g = (mat(m.sp_wq) @ X).mean(-1, keepdim=True).transpose(1, 2)  # (B, 1, C/2)
        theta = mat(m.sp_wv) @ X  # (B, C/2, N)
        parallel = m.layout == "parallel"  # PSA_p: softmax of the product; PSA_s: of θ, before it
        logits = torch.softmax(g @ theta, dim=-1) if parallel else g @ torch.softmax(theta, dim=-1)
        return X * torch.sigmoid(logits)

    out = channel_only(X) + spatial_only(X) if m.layout == "parallel" else spatial_only(channel_only(X))
    return out.reshape(B, C, H, W)


@pytest.mark.parametrize("layout", ["parallel", "sequential"])
def test_psa_layouts_follow_the_official_classes(layout):
    m = make("psa", 16, layout=layout)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(2, 16, 3, 5, dtype=F64)
    torch.testing.assert_close(m(x), psa_reference(m, x), rtol=0, atol=1e-12)


def test_psa_sequential_count_and_bad_layout():
    C = 256  # PSA_s: the channel branch's W_z is C/2 -> C/8 -> LayerNorm -> C, with biases
    expected = C + 3 * C * (C // 2) + (C // 2) * (C // 8) + C // 8 + 2 * (C // 8) + (C // 8) * C + C
    assert sum(p.numel() for p in make("psa", C, layout="sequential").parameters()) == expected
    with pytest.raises(ValueError, match="layout: expected one of .*got 'serial'"):
        make("psa", 32, layout="serial")
    assert paper_place("psa").placement == "after_conv1"


# ---- epsa ---------------------------------------------------------------------------------------------
def test_epsa_softmaxes_the_se_weights_across_scales_and_concatenates_the_last_scale_first():
    m = make("epsa", 4)  # C/4 = 1 channel per scale; every group count falls to 1, the SE width to 1
    assert [c.groups for c in m.convs] == [1, 1, 1, 1] and m.se.fc1.out_channels == 1
    taps = torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 2]], dtype=F64)
    with torch.no_grad():
        for conv, t in zip(m.convs, taps, strict=True):
            conv.weight.zero_()
            k = conv.kernel_size[0]
            conv.weight[0, :, k // 2, k // 2] = t  # centre taps only: F_i = t_i · x at each position
        m.se.fc1.weight.fill_(1.0)
        m.se.fc1.bias.fill_(0.0)
        m.se.fc2.weight.fill_(2.0)
        m.se.fc2.bias.fill_(-1.0)
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]], [[5.0, 5.0]], [[0.5, -0.5]]]], dtype=F64)  # (1, 4, 1, 2)
    feats = torch.einsum("sc,bchw->bshw", taps, x)  # (1, 4 scales, 1, 2): [x0, x1, x0 + x1, 2 x3]
    z = torch.sigmoid(2 * feats.mean(dim=(2, 3)).clamp(min=0) - 1)  # σ(W2 ReLU(W1 GAP F_i + b1) + b2)
    attn = torch.softmax(z, dim=1)  # across the four scales
    weighted = feats * attn.view(1, 4, 1, 1)
    expected = weighted.flip(1)  # the official torch.cat((x_i, out)): scale 3, 2, 1, 0
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-12)


def test_epsa_groups_fall_to_a_divisor_of_the_split_and_channels_must_split_in_four():
    assert [c.groups for c in make("epsa", 32).convs] == [1, 4, 8, 8]  # C/4 = 8: 16 -> 8
    assert [c.groups for c in make("epsa", 64).convs] == [1, 4, 8, 16]  # the paper's, from ResNet-50's 64
    assert [c.groups for c in make("epsa", 24).convs] == [1, 3, 6, 6]  # C/4 = 6: 4 -> 3, 8 -> 6, 16 -> 6
    assert make("epsa", 32).se.fc1.out_channels == 1  # (C/4) // 16 = 0 in the official code: here at least 1
    with pytest.raises(ValueError, match="channels: expected a multiple of 4, got 30"):
        make("epsa", 30)
    with pytest.raises(ValueError, match="groups: expected one group count per kernel size"):
        make("epsa", 32, groups=(1, 4))


def test_epsa_strides_every_scale_and_its_resnet_place_keeps_the_blocks_bn():
    m = make("epsa", 32, stride=2)
    assert m(torch.randn(2, 32, 5, 3, dtype=F64)).shape == (2, 32, 3, 2)  # as a 3×3 conv of stride 2, padding 1
    place = paper_place("epsa")
    assert place.placement == "conv" and place.kwargs == {"bn": True}
    with_bn = make("epsa", 256, bn=True)
    assert sum(p.numel() for p in with_bn.parameters()) == attnlab.attention_info("epsa").num_params(256) + 2 * 256


# ---- cot ----------------------------------------------------------------------------------------------
def test_local_aggregation_matches_the_official_kernels_loops():
    torch.manual_seed(0)
    B, C, H, W, k, cw = 2, 6, 3, 4, 3, 2
    v, w = torch.randn(B, C, H, W, dtype=F64), torch.randn(B, cw, k * k, H, W, dtype=F64)
    expected = torch.zeros(B, C, H, W, dtype=F64)
    for n, c, h, x_, kh, kw in (
        (n, c, h, x_, kh, kw)
        for n in range(B)
        for c in range(C)
        for h in range(H)
        for x_ in range(W)
        for kh in range(k)
        for kw in range(k)
    ):
        hi, wi = h - 1 + kh, x_ - 1 + kw  # aggregation_zeropad: zero outside the map
        if 0 <= hi < H and 0 <= wi < W:
            expected[n, c, h, x_] += w[n, c % cw, kh * k + kw, h, x_] * v[n, c, hi, wi]
    torch.testing.assert_close(local_aggregate(v, w, k), expected, rtol=0, atol=1e-12)


def test_cot_with_a_fixed_local_kernel_and_no_static_context():
    m = make("cot", 16)  # C/8 = 2 kernels: even channels take kernel 0, odd ones kernel 1
    box, centre = torch.ones(9, dtype=F64), torch.zeros(9, dtype=F64).index_fill_(0, torch.tensor([4]), 1.0)
    t = 0.7
    with torch.no_grad():
        m.key_embed[0].weight.zero_()  # K1 = ReLU(BN(0)) = 0
        m.embed[3].weight.zero_()  # A before GroupNorm is 0, so A = the GroupNorm's β
        m.embed[3].bias.zero_()
        m.embed[4].bias.copy_(torch.cat([box, centre]))
        m.conv1x1[0].weight.copy_(torch.eye(16, dtype=F64).view(16, 16, 1, 1))  # V = BN(x)
        m.se[3].weight.zero_()
        m.se[3].bias.copy_(torch.tensor([t, 0.0], dtype=F64).repeat(16))  # channel c: logits (t, 0) for (K2, K1)
    x = torch.randn(1, 16, 3, 4, dtype=F64)
    v = F.pad(x * BN, (1, 1, 1, 1))
    box_sum = sum(v[:, :, i : i + 3, j : j + 4] for i in range(3) for j in range(3))  # zero-padded 3×3 sums
    agg = torch.where((torch.arange(16) % 2 == 0).view(1, 16, 1, 1), box_sum, x * BN)
    k2 = F.silu(agg * BN)
    torch.testing.assert_close(m(x), torch.sigmoid(torch.tensor(t, dtype=F64)) * k2, rtol=0, atol=1e-12)


def test_cot_strides_by_an_average_pool_first():
    m1, m2 = make("cot", 32), make("cot", 32, stride=2)
    m2.load_state_dict(m1.state_dict())
    x = torch.randn(2, 32, 5, 3, dtype=F64)
    pooled = F.avg_pool2d(x, 3, 2, padding=1)  # count_include_pad: the official nn.AvgPool2d(3, 2, padding=1)
    assert pooled.shape[2:] == (3, 2)
    torch.testing.assert_close(m2(x), m1(pooled), rtol=0, atol=1e-12)
    assert paper_place("cot").placement == "conv"
    with pytest.raises(ValueError, match="stride: expected 1 or 2, got 3"):
        make("cot", 32, stride=3)


def test_cot_groupings_fall_to_divisors_of_c():
    m = make("cot", 36)  # 4 divides 36; 8 does not: 6 channels share each kernel, 6 kernels
    assert m.key_embed[0].groups == 4 and m.embed[4].num_groups == 6 and m.embed[3].out_channels == 9 * 6
    assert m(torch.randn(1, 36, 2, 9, dtype=F64)).shape == (1, 36, 2, 9)
