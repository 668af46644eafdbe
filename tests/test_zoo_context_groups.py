"""SegFormer's efficient self-attention, HamNet's Hamburger, OCR, shuffle attention, SGE: each equation on
hand-sized float64 inputs with chosen weights, the expected values in plain tensor math."""

import math

import pytest
import torch
from test_zoo_papers import F64, make

import attnlab
from attnlab.models.placement import paper_place

EPS_BN = 1e-5


def bn_eval(t):
    """BatchNorm at its initial state in eval: running mean 0, variance 1, weight 1, bias 0."""
    return t / math.sqrt(1 + EPS_BN)


def layer_norm(t):
    """LayerNorm over the last dim at its initial affine (1, 0), eps 1e-5."""
    mu = t.mean(-1, keepdim=True)
    return (t - mu) / torch.sqrt(((t - mu) ** 2).mean(-1, keepdim=True) + 1e-5)


# ---- sra: SegFormer ------------------------------------------------------------------------------------------------
def identity_sra(m, channels):
    """q, kv, proj identities without biases; the sr conv the mean of its window per channel."""
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.q.weight.copy_(torch.eye(channels))
        m.kv.weight.copy_(torch.cat([torch.eye(channels), torch.eye(channels)]))
        m.proj.weight.copy_(torch.eye(channels))
        for c in range(channels):
            m.sr.weight[c, c] = 1.0 / m.sr_ratio**2
        m.norm.weight.fill_(1.0)


def test_sra_attends_to_the_layer_normed_window_means():
    m = make("sra", 2, num_heads=1, sr_ratio=2).eval()
    identity_sra(m, 2)
    x = torch.tensor(
        [[[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [-1.0, 4.0]], [[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [5.0, 3.0]]]
    )
    x = x.to(F64)[None]  # (1, 2, 4, 2): two 2×2 windows, rows 0-1 and 2-3
    means = torch.stack([x[0, :, 0:2].mean((1, 2)), x[0, :, 2:4].mean((1, 2))])  # (2 keys, C)
    keys = layer_norm(means)  # the reduced tokens: keys and values
    tokens = x[0].flatten(1).T  # (N = 8, C)
    weights = torch.softmax(tokens @ keys.T / math.sqrt(2), dim=-1)  # (N, 2): one head of d = 2
    expected = (weights @ keys).T.reshape(1, 2, 4, 2)
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-12)
    captured = {}
    m.gate.register_forward_hook(lambda mod, args, out: captured.setdefault("w", out))
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-12)  # the hooked path: weights through the gate
    torch.testing.assert_close(captured["w"], weights.reshape(1, 1, 8, 2, 1))  # (B, heads, N, keys 2×1)


def test_sra_pads_a_side_shorter_than_the_ratio_to_one_window():
    m = make("sra", 2, num_heads=1, sr_ratio=2).eval()
    identity_sra(m, 2)
    x = torch.tensor([[[1.0, 2.0, 7.0]], [[3.0, -1.0, 0.0]]], dtype=F64)[None]  # (1, 2, 1, 3)
    # zero row below: the one window is columns 0-1 over (row 0, zeros); column 2 fills no window (floor)
    key = layer_norm(x[0, :, 0, :2].sum(1) / 4)[None]  # (1 key, C)
    tokens = x[0].flatten(1).T
    expected = (torch.softmax(tokens @ key.T / math.sqrt(2), dim=-1) @ key).T.reshape(1, 2, 1, 3)
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-12)
    # one key: every position gets the value of that key
    torch.testing.assert_close(m(x), key.T.reshape(1, 2, 1, 1).expand(1, 2, 1, 3), rtol=0, atol=1e-12)


def test_sra_parameters_are_timms_pvt_v2_attention_at_its_settings():
    pvt = pytest.importorskip("timm.models.pvt_v2")
    from test_zoo_papers import PARAMS_AT_256

    for heads, r in ((2, 4), (1, 8), (8, 1)):
        theirs = sum(p.numel() for p in pvt.Attention(256, num_heads=heads, sr_ratio=r).parameters())
        ours = attnlab.attention_info("sra").cls(256, num_heads=heads, sr_ratio=r)
        assert sum(p.numel() for p in ours.parameters()) == theirs
    assert PARAMS_AT_256["sra"] == sum(p.numel() for p in pvt.Attention(256, num_heads=2, sr_ratio=4).parameters())


# ---- ham: Hamburger --------------------------------------------------------------------------------------------------
def reference_hamburger(m, x, steps, *, one_step=True):
    """The Hamburger in plain tensor math: einsum 1×1 convs, the multiplicative updates written out, eval BN."""
    z = torch.relu(
        torch.einsum("dc,bchw->bdhw", m.lower_bread.weight[:, :, 0, 0], x) + m.lower_bread.bias[:, None, None]
    )
    B, D, H, W = z.shape
    z = z.reshape(B, D, H * W)  # S = 1
    zc = z.detach() if one_step else z
    bases = m.bases[0].expand(B, -1, -1)  # (B, D, R)
    coef = torch.softmax(torch.einsum("bdn,bdr->bnr", zc, bases), dim=-1)
    for _ in range(steps):
        coef = coef * torch.einsum("bdn,bdr->bnr", zc, bases) / (coef @ (bases.mT @ bases) + 1e-6)
        bases = bases * torch.einsum("bdn,bnr->bdr", zc, coef) / (bases @ (coef.mT @ coef) + 1e-6)
    coef = coef * torch.einsum("bdn,bdr->bnr", z, bases) / (coef @ (bases.mT @ bases) + 1e-6)
    ham = torch.einsum("bdr,bnr->bdn", bases, coef).reshape(B, D, H, W)
    up = torch.einsum("cd,bdhw->bchw", m.upper_bread.weight[:, :, 0, 0], ham)
    return torch.relu(x + bn_eval(up))


def test_ham_factorizes_with_seven_steps_in_eval_and_six_in_training():
    m = make("ham", 6, rank=2)  # D = 6, R = 2
    assert m.bases.shape == (1, 6, 2) and torch.allclose(m.bases.norm(dim=1), torch.ones(1, 2, dtype=F64))
    x = torch.randn(2, 6, 3, 4, dtype=F64)
    torch.testing.assert_close(m.eval()(x), reference_hamburger(m, x, 7), rtol=0, atol=1e-10)
    assert not torch.allclose(m(x), reference_hamburger(m, x, 6), rtol=0, atol=1e-8)
    m.train()
    m.bn.momentum = 0.0  # keep the running statistics at (0, 1); then training BN is the batch's: compare the ham only
    m.bn.eval()
    torch.testing.assert_close(m(x), reference_hamburger(m, x, 6), rtol=0, atol=1e-10)


def test_ham_backpropagates_through_the_last_coefficient_update_only():
    m = make("ham", 6, rank=2).eval()
    x = torch.randn(1, 6, 3, 3, dtype=F64)
    g = torch.randn(1, 6, 3, 3, dtype=F64)
    x1, x2, x3 = (x.clone().requires_grad_() for _ in range(3))
    (m(x1) * g).sum().backward()
    (reference_hamburger(m, x2, 7) * g).sum().backward()
    (reference_hamburger(m, x3, 7, one_step=False) * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-10)
    assert not torch.allclose(x1.grad, x3.grad, rtol=0, atol=1e-6)  # not the gradient through all K steps


def test_ham_widths_scale_with_channels_and_the_bases_are_fixed():
    for c, r in ((32, 4), (256, 32), (512, 64), (2048, 64)):
        m = attnlab.create_attention("ham", c)
        assert m.lower_bread.out_channels == c and m.bases.shape == (1, c, r)
    m = make("ham", 32).eval()
    x = torch.rand(3, 32, 5, 4, dtype=F64)
    before = m.bases.clone()
    torch.testing.assert_close(m(x), m(x), rtol=0, atol=0)  # no random basis per forward
    assert torch.equal(m.bases, before)  # and no update of the buffer in eval (the official's online_update)
    assert paper_place("ham").placement == "nonlocal"


# ---- ocr ----------------------------------------------------------------------------------------------------------
def test_ocr_gathers_regions_and_fuses_the_object_context():
    m = make("ocr", 4, num_regions=3, key_channels=2).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn_like(p))
    x = torch.randn(2, 4, 3, 2, dtype=F64)

    def conv(w, t):  # 1×1 conv on (B, C, ...) by einsum
        return torch.einsum("oc,bc...->bo...", w[:, :, 0, 0], t)

    def cbr(ws, t):  # (conv, BN, ReLU)·len(ws), BN at its initial state
        for w in ws:
            t = torch.relu(bn_eval(conv(w, t)))
        return t

    h = m.region_head
    logits = conv(h[3].weight, torch.relu(bn_eval(conv(h[0].weight, x) + h[0].bias[:, None, None])))
    logits = logits + h[3].bias[:, None, None]  # (B, K, H, W)
    p = torch.softmax(logits.flatten(2), dim=-1)  # (B, K, N): each region over the positions
    f = torch.einsum("bkn,bcn->bck", p, x.flatten(2))  # object representations (B, C, K)
    q = cbr([m.f_pixel[0].weight, m.f_pixel[3].weight], x.flatten(2))  # (B, Ck, N)
    k = cbr([m.f_object[0].weight, m.f_object[3].weight], f)  # (B, Ck, K)
    v = cbr([m.f_down[0].weight], f)
    w = torch.softmax(torch.einsum("bcn,bck->bnk", q, k) / math.sqrt(2), dim=-1)  # over the K regions
    y = cbr([m.f_up[0].weight], torch.einsum("bnk,bck->bcn", w, v)).reshape(2, 4, 3, 2)
    expected = cbr([m.fuse[0].weight], torch.cat([y, x], dim=1))
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-10)
    assert paper_place("ocr").placement == "nonlocal"


# ---- shuffle: SA-Net ---------------------------------------------------------------------------------------------
def test_shuffle_gates_each_groups_halves_and_interleaves_the_groups():
    m = make("shuffle", 4, groups=2)  # c = 4 / (2·2) = 1 channel per half
    with torch.no_grad():
        m.cweight.fill_(2.0), m.cbias.fill_(-1.0), m.sweight.fill_(0.5), m.sbias.fill_(0.25)
        m.gn.weight.fill_(3.0), m.gn.bias.fill_(1.0)
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]], [[-1.0, 5.0]], [[4.0, 4.0]]]], dtype=F64)  # (1, 4, 1, 2)

    def s(t):
        return torch.sigmoid(torch.as_tensor(t, dtype=F64))

    y0 = s(2.0 * 2.0 - 1.0) * x[0, 0]  # group 1, channel half: mean 2
    y2 = s(2.0 * 2.0 - 1.0) * x[0, 2]  # group 2, channel half: mean 2
    gn1 = (
        3.0 * torch.tensor([1.0, -1.0], dtype=F64) / math.sqrt(1 + 1e-5) + 1.0
    )  # channel 1: (2, 0), mean 1, variance 1
    y1 = s(0.5 * gn1 + 0.25) * x[0, 1]
    y3 = s(0.5 * 1.0 + 0.25) * x[0, 3]  # channel 3 is constant: GN gives its bias, 1
    expected = torch.stack([y0, y2, y1, y3])[None]  # concat [y0, y1, y2, y3], shuffled by 2: 0, 2, 1, 3
    torch.testing.assert_close(m(x), expected.to(F64), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("channels", "groups"), [(32, 16), (64, 32), (96, 48), (128, 64), (2048, 64)])
def test_shuffle_takes_the_largest_group_count_with_2g_dividing_c(channels, groups):
    m = attnlab.create_attention("shuffle", channels)
    assert m.groups == groups and m.cweight.shape == (1, channels // (2 * groups), 1, 1)


# ---- sge -----------------------------------------------------------------------------------------------------------
def test_sge_gates_positions_by_their_similarity_to_the_group_mean():
    m = make("sge", 4, groups=2)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))
        m.bias.copy_(torch.tensor([0.5, 0.0]).view(1, 2, 1, 1))
    x = torch.tensor([[[[1.0, 2.0, 3.0]], [[0.0, 1.0, 2.0]], [[1.0, 1.0, 4.0]], [[2.0, 0.0, 1.0]]]], dtype=F64)
    # group 1: channels (1, 2, 3), (0, 1, 2): mean (2, 1); g · x_i = 2, 5, 8 -> centred -3, 0, 3, unbiased std 3
    # group 2: channels (1, 1, 4), (2, 0, 1): mean (2, 1); g · x_i = 4, 2, 9 -> centred -1, -3, 4, std √13
    c1 = torch.tensor([-3.0, 0.0, 3.0], dtype=F64) / (3.0 + 1e-5)
    c2 = torch.tensor([-1.0, -3.0, 4.0], dtype=F64) / (math.sqrt(13.0) + 1e-5)
    a = torch.stack([torch.sigmoid(2.0 * c1 + 0.5)] * 2 + [torch.sigmoid(-1.0 * c2)] * 2)  # (C, N)
    torch.testing.assert_close(m(x), x * a.view(1, 4, 1, 3).to(F64), rtol=0, atol=1e-12)
    one = x[..., :1]  # 1×1: c − μ = 0, the gate is σ(β) (the official's unbiased std is NaN there)
    torch.testing.assert_close(m(one), one * torch.sigmoid(m.bias.detach()).repeat_interleave(2, dim=1))


@pytest.mark.parametrize(("channels", "groups"), [(32, 32), (48, 48), (64, 64), (96, 48), (2048, 64)])
def test_sge_takes_the_largest_group_count_dividing_c(channels, groups):
    assert attnlab.create_attention("sge", channels).groups == groups
