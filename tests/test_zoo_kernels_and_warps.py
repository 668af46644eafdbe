"""LKA (VAN), self-calibrated convolution, dynamic convolution, the spatial transformer and attention-augmented
convolution: their equations on hand-sized inputs, with chosen weights, in plain tensor math."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from test_zoo_papers import BN_EVAL, F64
from test_zoo_papers import make_eval as make

import attnlab
from attnlab.models.placement import paper_place


def t(values):
    return torch.tensor(values, dtype=F64)


def test_the_papers_places_in_a_resnet():
    assert paper_place("lka").placement == "block"
    assert paper_place("stn").placement == "stage"
    assert [paper_place(n).placement for n in ("scconv", "dynconv", "aa")] == ["conv"] * 3
    assert paper_place("aa").resolved_stages == (2, 3, 4)


# ---- LKA ------------------------------------------------------------------------------------------------
def test_lka_block_gates_the_projection_by_its_large_kernel_map():
    m = make("lka", 2)
    lka = m.spatial_gating_unit
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.proj_1.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        m.proj_1.bias.copy_(t([0.5, -1.0]))
        lka.conv0.weight[:, 0, 2, 2] = t([2.0, -1.0])  # the 5×5 kernel's centre
        lka.conv0.bias.copy_(t([0.1, 0.2]))
        lka.conv_spatial.weight[:, 0, 3, 4] = t([1.0, 3.0])  # one tap right of the centre: 3 pixels (dilation 3)
        lka.conv_spatial.bias.copy_(t([0.0, -0.5]))
        lka.conv1.weight.copy_(t([[1.0, 2.0], [0.0, -1.0]]).view(2, 2, 1, 1))
        lka.conv1.bias.copy_(t([0.3, 0.0]))
        m.proj_2.weight.copy_(t([[0.0, 1.0], [1.0, 1.0]]).view(2, 2, 1, 1))
    x = torch.randn(1, 2, 2, 4, dtype=F64)
    z = x + t([0.5, -1.0]).view(1, 2, 1, 1)
    u = 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))  # GELU
    a0 = t([2.0, -1.0]).view(1, 2, 1, 1) * u + t([0.1, 0.2]).view(1, 2, 1, 1)
    a1 = torch.zeros_like(a0)
    a1[..., :1] = t([1.0, 3.0]).view(1, 2, 1, 1) * a0[..., 3:]  # column j sees column j + 3 (zero padding)
    a1 = a1 + t([0.0, -0.5]).view(1, 2, 1, 1)
    a = torch.einsum("oc,bchw->bohw", t([[1.0, 2.0], [0.0, -1.0]]), a1) + t([0.3, 0.0]).view(1, 2, 1, 1)
    expected = torch.einsum("oc,bchw->bohw", t([[0.0, 1.0], [1.0, 1.0]]), a * u) + x
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-12)


# ---- self-calibrated convolution ------------------------------------------------------------------------
def test_scconv_calibrates_one_half_and_convolves_the_other():
    m = make("scconv", 2, pooling_r=2)  # halves of one channel; BNs at init (eval)
    with torch.no_grad():
        for conv, tap, w in (
            (m.k1[0], (1, 1), 2.0),
            (m.scconv.k2[1], (1, 1), 1.5),
            (m.scconv.k3[0], (1, 2), -0.5),  # the right neighbour
            (m.scconv.k4[0], (1, 1), 3.0),
        ):
            conv.weight.zero_()
            conv.weight[(0, 0, *tap)] = w
    x = torch.randn(1, 2, 4, 6, dtype=F64)
    x2, x1 = x[:, :1], x[:, 1:]  # the plain half first, as SCBottleneck's [out_a; out_b]
    pooled = x1.reshape(1, 1, 2, 2, 3, 2).mean(dim=(3, 5))  # 2×2 windows: (2, 3)
    T = (1.5 * BN_EVAL * pooled).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest Up to (4, 6)
    right = F.pad(x1[..., 1:], (0, 1))
    y1 = 3.0 * BN_EVAL * (-0.5 * BN_EVAL * right * torch.sigmoid(x1 + T))
    torch.testing.assert_close(m(x), torch.cat([2.0 * BN_EVAL * x2, y1], dim=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("hw", "rows", "cols"), [((5, 4), 4, 4), ((1, 3), 1, 3), ((2, 9), 2, 4)])
def test_scconv_pools_in_floor_mode_and_a_short_side_whole(hw, rows, cols):
    """r = 4: 5 rows pool their first 4 (the official floor mode); a side under 4 is pooled whole; 9 columns pool
    0-3 and 4-7, upsampled by nearest neighbours (columns 0-4 take the first window: ⌊j·2/9⌋)."""
    m = make("scconv", 2)
    with torch.no_grad():
        for conv in (m.k1[0], m.scconv.k2[1], m.scconv.k3[0], m.scconv.k4[0]):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
    x = torch.randn(1, 2, *hw, dtype=F64)
    x1 = x[0, 1]
    means = [x1[:rows, j * cols : (j + 1) * cols].mean() for j in range(hw[1] // cols)]
    T = torch.stack([means[j * len(means) // hw[1]] for j in range(hw[1])]).expand(hw) * BN_EVAL
    y1 = BN_EVAL * (BN_EVAL * x1 * torch.sigmoid(x1 + T))
    torch.testing.assert_close(m(x)[0, 1], y1, rtol=0, atol=1e-12)


# ---- dynamic convolution --------------------------------------------------------------------------------
def test_dynconv_aggregates_its_kernels_by_a_tempered_softmax():
    m = make("dynconv", 2, kernel_size=1, num_kernels=2)  # hidden max(1, 2/4) = 1
    kernels = t([[[1.0, 2.0], [0.0, -1.0]], [[-1.0, 0.5], [3.0, 1.0]]])  # W_1, W_2: (K, C_out, C)
    with torch.no_grad():
        m.fc1.weight.copy_(t([1.0, 1.0]).view(1, 2, 1, 1))
        m.fc2.weight.copy_(t([1.0, -1.0]).view(2, 1, 1, 1))
        m.fc2.bias.copy_(t([0.0, 0.5]))
        m.weight.copy_(kernels.view(2, 2, 2, 1, 1))
    x = torch.randn(3, 2, 2, 3, dtype=F64)
    s = x.mean(dim=(2, 3)).sum(dim=1).clamp(min=0)  # ReLU(W1 GAP(x)), (B,)
    for tau in (1.0, 2.0):
        m.temperature = tau  # the annealing schedule's handle
        pi = torch.softmax(torch.stack([s, 0.5 - s], dim=1) / tau, dim=1)  # (B, K)
        w = torch.einsum("bk,koc->boc", pi, kernels)
        expected = BN_EVAL * torch.einsum("boc,bchw->bohw", w, x)
        torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-12)
    traced = torch.jit.trace(m, x[:2])  # the traced graph (ONNX, TorchScript) sums K convolutions instead
    torch.testing.assert_close(traced(x), expected, rtol=0, atol=1e-12)  # and keeps the batch free


def test_dynconv_default_temperature_and_a_bad_one():
    assert make("dynconv", 8).temperature == 1.0
    with pytest.raises(ValueError, match="temperature: expected a positive number, got 0"):
        attnlab.create_attention("dynconv", 8, temperature=0)


# ---- spatial transformer --------------------------------------------------------------------------------
def test_stn_starts_as_the_identity_and_resamples_by_its_theta():
    m = make("stn", 1)
    x = torch.randn(2, 1, 3, 4, dtype=F64)
    torch.testing.assert_close(m(x), x, rtol=0, atol=1e-12)  # θ = I: pixel centres onto themselves
    with torch.no_grad():
        m.fc2.bias.copy_(t([1.0, 0.0, 2 / 4, 0.0, 1.0, 0.0]))  # x_s = x_t + one pixel
    shifted = F.pad(x[..., 1:], (0, 1))  # each pixel takes its right neighbour, zeros from outside
    torch.testing.assert_close(m(x), shifted, rtol=0, atol=1e-12)
    with torch.no_grad():
        m.fc2.bias.copy_(t([-1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))  # x_s = −x_t
    torch.testing.assert_close(m(x), x.flip(-1), rtol=0, atol=1e-12)


def test_stn_localisation_net_regresses_theta_from_a_pooled_grid():
    m = make("stn", 2, pool_size=2, hidden=3)
    captured = []
    m.gate.register_forward_hook(lambda mod, i, o: captured.append(o))
    x = torch.randn(2, 2, 5, 3, dtype=F64)
    m(x)
    cells = [
        (slice(0, 3), slice(0, 2)),
        (slice(0, 3), slice(1, 3)),
        (slice(2, 5), slice(0, 2)),
        (slice(2, 5), slice(1, 3)),
    ]
    pooled = torch.stack([x[:, c, r, s].mean(dim=(1, 2)) for c in range(2) for r, s in cells], dim=1)  # (B, 2·4)
    hidden = (pooled @ m.fc1.weight.T + m.fc1.bias).clamp(min=0)
    theta = (hidden @ m.fc2.weight.T + m.fc2.bias).view(2, 2, 3)
    torch.testing.assert_close(captured[0], theta, rtol=0, atol=1e-12)


# ---- attention-augmented convolution --------------------------------------------------------------------
def test_aa_widths_follow_kappa_and_upsilon_in_multiples_of_the_heads():
    m = make("aa", 256)
    assert m.attn.splits == (160, 160, 24) and m.conv.out_channels == 232  # κ = 0.2 (20 per head), υ = 0.1
    assert make("aa", 2048).attn.splits == (408, 408, 200)  # 409.6 and 204.8, down to multiples of Nh = 8
    assert make("aa", 64, min_key_dim=1).attn.splits == (8, 8, 8)  # 12.8 and 6.4 channels: one per head at least
    with pytest.raises(ValueError, match="channels: expected more than dv = 8"):
        attnlab.create_attention("aa", 8)


def test_aa_concatenates_a_conv_with_relative_attention_clipped_past_max_size():
    m = make(
        "aa", 8, num_heads=2, key_ratio=0.5, value_ratio=0.5, min_key_dim=1, max_size=3
    )  # dk = dv = 4; conv 8 -> 4
    x = torch.randn(1, 8, 3, 4, dtype=F64)  # width offsets up to ±3: past max_size − 1 = 2, clipped to ±2
    w, b = m.attn.qkv.weight.view(12, 8), m.attn.qkv.bias
    q, k, v = (u.view(2, 2, 12) for u in (torch.einsum("oc,cn->on", w, x[0].flatten(1)) + b[:, None]).split(4))
    heads = torch.empty(2, 2, 12, dtype=F64)
    for h in range(2):
        logits = torch.empty(12, 12, dtype=F64)
        for n1, n2 in itertools.product(range(12), range(12)):
            (i1, j1), (i2, j2) = divmod(n1, 4), divmod(n2, 4)
            r = m.rel_h[i2 - i1 + 2] + m.rel_w[max(-2, min(2, j2 - j1)) + 2]
            logits[n1, n2] = q[h, :, n1] @ (k[h, :, n2] + r) / math.sqrt(2)  # dk / Nh = 2
        heads[h] = v[h] @ torch.softmax(logits, dim=-1).T
    wo = m.attn.proj.weight.view(4, 4)
    attended = (wo @ heads.reshape(4, 12) + m.attn.proj.bias[:, None]).view(4, 3, 4)
    conv = F.conv2d(x, m.conv.weight, m.conv.bias, padding=1)[0]
    torch.testing.assert_close(m(x)[0], BN_EVAL * torch.cat([conv, attended]), rtol=0, atol=1e-12)


def test_aa_with_a_stride_attends_over_the_convs_output_grid():
    strided = make("aa", 16, stride=2, num_heads=2)
    plain = make("aa", 16, num_heads=2)
    plain.load_state_dict(strided.state_dict())
    x = torch.randn(2, 16, 7, 6, dtype=F64)
    y = strided(x)
    assert y.shape == (2, 16, 4, 3)  # as the stride-2 3×3 conv's output
    dv = strided.attn.splits[2]
    torch.testing.assert_close(y[:, -dv:], plain(x[:, :, ::2, ::2])[:, -dv:], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "channels", "kwargs", "match"),
    [
        ("scconv", 31, {}, "channels: expected a multiple of 2, got 31"),
        ("scconv", 32, {"pooling_r": 0}, "pooling_r: expected a positive int, got 0"),
        ("dynconv", 32, {"kernel_size": 2}, "kernel_size: expected a positive odd int, got 2"),
        ("dynconv", 32, {"stride": 0}, "stride: expected a positive int, got 0"),
        ("stn", 32, {"pool_size": 0}, "pool_size: expected a positive int, got 0"),
        ("aa", 32, {"key_ratio": -1}, "key_ratio: expected a positive number, got -1"),
        ("lka", 0, {}, "channels: expected a positive int, got 0"),
    ],
)
def test_bad_arguments_name_themselves(name, channels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attnlab.create_attention(name, channels, **kwargs)
