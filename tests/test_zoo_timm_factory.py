"""The modules of timm's attention factory that have no attnlab counterpart of their own (gca, scoord, ela, strip):
each equation on a hand-sized float64 input with chosen weights, computed here with plain tensor math."""

import math

import pytest
import torch
import torch.nn.functional as F
from test_zoo_papers import F64
from test_zoo_papers import make_eval as make

import attnlab
from attnlab.measure.cost import count_params


def shift(v, k, dim):
    """v moved k places along dim, zeros let in: out[i] = v[i - k] (a 3-tap conv with a single 1 off-centre)."""
    out = torch.zeros_like(v)
    n = v.shape[dim]
    if k > 0:
        out.narrow(dim, k, n - k).copy_(v.narrow(dim, 0, n - k))
    else:
        out.narrow(dim, 0, n + k).copy_(v.narrow(dim, -k, n + k))
    return out


def test_gca_pools_by_attention_and_adds_a_layer_normed_bottleneck_with_timms_eps():
    m = make("gca", 4, reduction=2)  # d = 2
    x = torch.tensor([[[[0.0, math.log(3.0)]], [[4.0, 0.0]], [[0.0, 8.0]], [[2.0, 2.0]]]], dtype=F64)  # (1, 4, 1, 2)
    torch.testing.assert_close(m(x), x, rtol=0, atol=0)  # W_v2 starts at zero: the identity
    with torch.no_grad():
        m.conv_mask.weight.copy_(torch.tensor([1.0, 0, 0, 0]).view(1, 4, 1, 1))  # logits: channel 0
        m.conv_mask.bias.zero_()
        m.transform[0].weight.copy_(torch.tensor([[0.0, 1, 0, 0], [0, 0, 1, 0]]).view(2, 4, 1, 1))
        m.transform[0].bias.zero_()
        m.transform[3].weight.copy_(torch.tensor([[0.0, 1], [0, 2], [0, 3], [0, 4]]).view(4, 2, 1, 1))
        m.transform[3].bias.copy_(torch.tensor([0.5, 0, 0, 0]))
    # α = softmax(0, ln 3) = (1/4, 3/4): c = (¾ ln 3, 1, 6, 2); W_v1 c = (1, 6); LN: (∓2.5) / √(6.25 + 1e-6)
    t = 2.5 / math.sqrt(6.25 + 1e-6)  # ReLU keeps the second; timm's eps 1e-6 (gc's 1e-5 is 7e-7 away)
    added = torch.tensor([0.5 + t, 2 * t, 3 * t, 4 * t], dtype=F64).view(1, 4, 1, 1)
    torch.testing.assert_close(m(x), x + added, rtol=0, atol=1e-12)


def test_gca_widths_are_timms_rounded_c_over_8():
    widths = {c: make("gca", c).transform[0].out_channels for c in (4, 12, 20, 64, 2048)}
    assert widths == {4: 1, 12: 2, 20: 3, 64: 8, 2048: 256}  # nearest int (gc's r16 rounds down)
    assert make("gc", 12).transform[0].out_channels == 1


def test_scoord_sums_row_and_column_logits_before_one_sigmoid():
    m = make("scoord", 2)  # d = max(8, …) = 8
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.fc1.weight[0, 0] = 1.0  # hidden unit 0 reads channel 0's strip mean
        m.fc_h.weight[:, 0] = torch.tensor([1.0, -2.0])
        m.fc_w.weight[:, 0] = torch.tensor([0.5, 3.0])
        m.fc_h.bias.copy_(torch.tensor([0.0, 0.25]))
    x = torch.tensor(
        [[[[1.0, -2.0, 4.0], [0.0, 3.0, -1.0]], [[5.0, 5.0, 5.0], [-5.0, -5.0, -5.0]]]], dtype=F64
    )  # (1, 2, 2, 3)
    silu = lambda t: t * torch.sigmoid(t)  # noqa: E731
    f_h = silu(torch.tensor([3.0, 2.0], dtype=F64) / 3)  # channel 0's row means 1, 2/3
    f_w = silu(torch.tensor([1.0, 1.0, 3.0], dtype=F64) / 2)  # its column means 1/2, 1/2, 3/2
    a_h = torch.stack([f_h, -2 * f_h + 0.25])[:, :, None]  # (C, H, 1)
    a_w = torch.stack([0.5 * f_w, 3 * f_w])[:, None, :]  # (C, 1, W)
    torch.testing.assert_close(m(x), x * torch.sigmoid(a_h + a_w), rtol=0, atol=1e-12)


def test_ela_gates_each_axis_with_its_own_conv_group_norm_and_silu():
    m = make("ela", 2, kernel_size=3)
    with torch.no_grad():
        m.conv_h.weight.copy_(torch.tensor([[0.0, 1, 0], [1, 0, 0]]).view(2, 1, 3, 1))  # ch 0 itself, ch 1 row above
        m.conv_w.weight.copy_(torch.tensor([[0.0, 0, 1], [0, 2, 0]]).view(2, 1, 1, 3))  # ch 0 column right, ch 1 ×2
        m.norm_w.weight.copy_(torch.tensor([1.0, 0.5]))
        m.norm_w.bias.copy_(torch.tensor([0.0, -1.0]))
    x = torch.arange(24, dtype=F64).view(1, 2, 3, 4).sin() * 3
    z_h, z_w = x.mean(3), x.mean(2)  # (1, C, H), (1, C, W)
    y_h = torch.stack([z_h[:, 0], shift(z_h[:, 1], 1, 1)], 1)
    y_w = torch.stack([shift(z_w[:, 0], -1, 1), 2 * z_w[:, 1]], 1)

    def group_norm_1(y):  # one group: every channel and position of a sample together, biased variance
        return (y - y.mean()) / torch.sqrt(y.var(unbiased=False) + 1e-5)

    g_h = torch.sigmoid(F.silu(group_norm_1(y_h)))[..., None]  # (1, C, H, 1)
    n_w = (
        group_norm_1(y_w) * torch.tensor([1.0, 0.5], dtype=F64)[:, None] + torch.tensor([0.0, -1.0], dtype=F64)[:, None]
    )
    g_w = torch.sigmoid(F.silu(n_w))[:, :, None, :]  # (1, C, 1, W)
    torch.testing.assert_close(m(x), x * g_h * g_w, rtol=0, atol=1e-12)


def test_strip_adds_the_two_refined_strips_under_one_sigmoid():
    m = make("strip", 2)  # k = 3
    with torch.no_grad():
        m.conv_h.weight.copy_(torch.tensor([[1.0, 0, 0], [0, -1, 0]]).view(2, 1, 3, 1))  # ch 0 row above, ch 1 −itself
        m.conv_w.weight.copy_(torch.tensor([[0.0, 0, 2], [1, 1, 1]]).view(2, 1, 1, 3))  # ch 0 2×right, ch 1 3-sum
    x = torch.arange(30, dtype=F64).view(1, 2, 3, 5).cos() * 2
    z_h, z_w = x.mean(3), x.mean(2)  # (1, C, H), (1, C, W)
    y_h = torch.stack([shift(z_h[:, 0], 1, 1), -z_h[:, 1]], 1)[..., None]  # (1, C, H, 1)
    w1 = z_w[:, 1]
    y_w = torch.stack([2 * shift(z_w[:, 0], -1, 1), shift(w1, 1, 1) + w1 + shift(w1, -1, 1)], 1)[:, :, None]
    torch.testing.assert_close(m(x), x * torch.sigmoid(y_h + y_w), rtol=0, atol=1e-12)
    assert attnlab.attention_info("strip").num_params(256) == 2 * 3 * 256


@pytest.mark.parametrize("name", ["gca", "scoord", "ela", "strip"])
def test_parameter_counts_are_those_of_timms_factory_at_every_resnet_width(name):
    """attnlab's defaults are timm's: the module timm's create_attn.get_attn(name) builds has as many parameters."""
    get_attn = pytest.importorskip("timm.layers.create_attn").get_attn
    for c in (20, 32, 64, 128, 256, 512, 1024, 2048):
        assert attnlab.attention_info(name).num_params(c) == count_params(get_attn(name)(c)), c
