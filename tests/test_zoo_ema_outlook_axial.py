"""EMA, outlook attention and axial attention: each equation on a hand-sized input with plain tensor math."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from test_zoo_papers import F64, make

import attnlab
from attnlab.layers.axial import axial_groups
from attnlab.layers.ema import ema_groups
from attnlab.layers.outlook import outlook_heads
from attnlab.models.placement import paper_place


def randomize_(module, seed=1):
    """Every weight and BN statistic random (BN scales near 1, variances in [0.5, 1.5])."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            r = torch.randn(t.shape, generator=g, dtype=F64)
            if key.endswith("running_var"):
                r = 0.5 + torch.rand(t.shape, generator=g, dtype=F64)
            elif key.endswith("weight") and t.dim() == 1:
                r = 1 + 0.2 * r
            else:
                r = 0.5 * r
            t.copy_(r)
    return module


# ---- EMA ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("channels", "groups"), [(32, 16), (64, 32), (256, 32), (2048, 32), (48, 24), (96, 32), (16, 8), (3, 1), (1, 1)]
)
def test_ema_groups_leave_two_channels_per_group(channels, groups):
    assert ema_groups(channels, 32) == groups
    assert make("ema", channels).groups == groups


def test_ema_refuses_a_bad_factor():
    with pytest.raises(ValueError, match="factor: expected a positive int, got 0"):
        attnlab.create_attention("ema", 32, factor=0)


def test_ema_follows_its_equations_on_known_weights():
    m = randomize_(make("ema", 4, factor=2))  # G = 2 groups of c = 2 channels
    x = torch.randn(2, 4, 3, 5, dtype=F64)
    w1, b1 = m.conv1x1.weight.view(2, 2), m.conv1x1.bias
    w3, b3 = m.conv3x3.weight, m.conv3x3.bias
    gamma, beta = m.gn.weight, m.gn.bias
    out = torch.empty_like(x)
    for b, g in itertools.product(range(2), range(2)):
        xg = x[b, 2 * g : 2 * g + 2]  # (c, H, W)
        g_h = torch.sigmoid(w1 @ xg.mean(dim=2) + b1[:, None])  # (c, H)
        g_w = torch.sigmoid(w1 @ xg.mean(dim=1) + b1[:, None])  # (c, W): the same 1×1 conv on both strips
        y = xg * g_h[:, :, None] * g_w[:, None, :]
        mu, var = y.mean(dim=(1, 2), keepdim=True), y.var(dim=(1, 2), unbiased=False, keepdim=True)
        x1 = (y - mu) / torch.sqrt(var + 1e-5) * gamma[:, None, None] + beta[:, None, None]  # one channel per group
        x2 = F.conv2d(xg[None], w3, b3, padding=1)[0]
        a1, a2 = torch.softmax(x1.mean(dim=(1, 2)), 0), torch.softmax(x2.mean(dim=(1, 2)), 0)
        weights = (a1[:, None, None] * x2).sum(0) + (a2[:, None, None] * x1).sum(0)  # (H, W)
        out[b, 2 * g : 2 * g + 2] = xg * torch.sigmoid(weights)
    torch.testing.assert_close(m(x), out, rtol=0, atol=1e-12)


# ---- outlook attention --------------------------------------------------------------------------------
@pytest.mark.parametrize(("channels", "heads"), [(32, 1), (63, 1), (64, 2), (256, 8), (384, 12), (2048, 64), (100, 2)])
def test_outlook_heads_are_volos_32_channels_wide(channels, heads):
    assert outlook_heads(channels, None) == heads


def test_outlook_refuses_heads_that_do_not_divide_the_channels():
    with pytest.raises(ValueError, match="num_heads: expected None or a positive divisor of channels=32, got 3"):
        attnlab.create_attention("outlook", 32, num_heads=3)


def outlook_by_hand(m, x):
    """Eq. 3-4 by loops: window by window, the centre's k⁴ weights, the values it aggregates, folded back."""
    B, C, H, W = x.shape
    k, s, n = m.kernel_size, m.stride, m.num_heads
    d, p, K = C // n, k // 2, k * k
    t = x.permute(0, 2, 3, 1)
    y = (t - t.mean(-1, keepdim=True)) / torch.sqrt(t.var(-1, unbiased=False, keepdim=True) + 1e-5)
    y = y * m.norm.weight + m.norm.bias  # (B, H, W, C)
    v = y @ m.v.weight.T
    folded = torch.zeros(B, H, W, C, dtype=x.dtype)
    for b, r, c in itertools.product(range(B), range(math.ceil(H / s)), range(math.ceil(W / s))):
        centre = y[b, r * s : r * s + s, c * s : c * s + s].mean(dim=(0, 1))  # ceil-mode pool: the block's in-bounds
        logits = (m.attn.weight @ centre + m.attn.bias).view(n, K, K) / math.sqrt(d)
        a = torch.softmax(logits, dim=-1)
        spots = [(r * s + i // k - p, c * s + i % k - p) for i in range(K)]  # the window's positions
        inside = [0 <= i < H and 0 <= j < W for i, j in spots]
        vals = torch.stack(
            [v[b, i, j] if ok else torch.zeros(C, dtype=x.dtype) for (i, j), ok in zip(spots, inside, strict=True)]
        )
        for h in range(n):
            agg = a[h] @ vals[:, h * d : (h + 1) * d]  # (K, d): Σ_j A_ij v_j
            for (i, j), ok, row in zip(spots, inside, agg, strict=True):
                if ok:
                    folded[b, i, j, h * d : (h + 1) * d] += row
    return x + (folded @ m.proj.weight.T + m.proj.bias).permute(0, 3, 1, 2)


@pytest.mark.parametrize(("stride", "hw"), [(1, (3, 4)), (1, (1, 1)), (2, (3, 4)), (2, (5, 5)), (3, (4, 2))])
def test_outlook_attention_follows_eq_3_and_4_window_by_window(stride, hw):
    m = randomize_(make("outlook", 4, num_heads=2, stride=stride))
    x = torch.randn(2, 4, *hw, dtype=F64)
    torch.testing.assert_close(m(x), outlook_by_hand(m, x), rtol=0, atol=1e-12)


# ---- axial attention ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("channels", "groups"), [(32, 8), (64, 8), (2048, 8), (12, 6), (6, 3), (2, 1)])
def test_axial_groups_leave_each_group_an_even_width(channels, groups):
    assert axial_groups(channels, 8) == groups


def test_axial_refuses_an_odd_width():
    with pytest.raises(ValueError, match="channels: expected an even number"):
        attnlab.create_attention("axial", 33)


def axis_by_hand(layer, x):
    """Eq. 4 along the height, eval-mode BNs as their affine maps, pair by pair; offsets beyond the table masked."""
    N, C, H, W = x.shape
    G, K = layer.groups, layer.kernel_size
    gp = C // G

    def bn(t, norm, ch):
        return (t - norm.running_mean[ch]) / torch.sqrt(norm.running_var[ch] + 1e-5) * norm.weight[ch] + norm.bias[ch]

    qkv = torch.einsum("oc,nchw->nohw", layer.qkv_transform.weight[:, :, 0, 0], x)
    qkv = torch.stack([bn(qkv[:, ch], layer.bn_qkv, ch) for ch in range(2 * C)], dim=1)
    R = layer.relative  # (2gp, 2K − 1): r^q, r^k, r^v stacked
    out = torch.zeros_like(x)
    for n, g, w in itertools.product(range(N), range(G), range(W)):
        block = qkv[n, g * 2 * gp : (g + 1) * 2 * gp, :, w]
        q, k, v = block[: gp // 2], block[gp // 2 : gp], block[gp:]
        s = torch.full((H, H), float("-inf"), dtype=x.dtype)
        for i, j in itertools.product(range(H), range(H)):
            if abs(i - j) <= K - 1:
                qk = q[:, i] @ k[:, j]
                qr = q[:, i] @ R[: gp // 2, i - j + K - 1]
                kr = k[:, j] @ R[gp // 2 : gp, j - i + K - 1]
                sim = layer.bn_similarity
                s[i, j] = bn(qk, sim, g) + bn(qr, sim, G + g) + bn(kr, sim, 2 * G + g)
        a = torch.softmax(s, dim=1)
        for c, i in itertools.product(range(gp), range(H)):
            js = [j for j in range(H) if abs(i - j) <= K - 1]
            sv = sum(a[i, j] * v[c, j] for j in js)
            sve = sum(a[i, j] * R[gp + c, i - j + K - 1] for j in js)
            ch = g * gp + c
            out[n, ch, i, w] = bn(sv, layer.bn_output, 2 * ch) + bn(sve, layer.bn_output, 2 * ch + 1)
    return out


@pytest.mark.parametrize("hw", [(3, 2), (6, 3)])  # within the span; beyond it (the local span of 2K − 1 = 5)
def test_axial_layers_follow_eq_4_pair_by_pair(hw):
    m = randomize_(make("axial", 8, groups=2, kernel_size=3)).eval()  # gp = 4: queries and keys of 2 channels
    x = torch.randn(2, 8, *hw, dtype=F64)
    with torch.no_grad():
        after_height = m.height(x)
        torch.testing.assert_close(after_height, axis_by_hand(m.height, x), rtol=0, atol=1e-12)
        # the width layer is the same computation along W: by hand on the transposed map
        width = axis_by_hand(m.width, after_height.transpose(2, 3)).transpose(2, 3)
        torch.testing.assert_close(m(x), width, rtol=0, atol=1e-12)


def test_axial_weights_are_zero_beyond_the_span_and_maps_sum_to_one():
    m = randomize_(make("axial", 8, groups=2, kernel_size=2)).eval()
    captured = {}
    m.height.gate.register_forward_hook(lambda mod, args, out: captured.__setitem__("h", out))
    m.width.gate.register_forward_hook(lambda mod, args, out: captured.__setitem__("w", out))
    m(torch.randn(1, 8, 5, 4, dtype=F64))
    h, w = (
        captured["h"].view(1, 2, 5, 5, 4),
        captured["w"].view(1, 2, 4, 5, 4),
    )  # (B, G, H_q, H_k, W), (B, G, W_q, H, W_k)
    torch.testing.assert_close(h.sum(dim=3), torch.ones(1, 2, 5, 4, dtype=F64))
    torch.testing.assert_close(w.sum(dim=4), torch.ones(1, 2, 4, 5, dtype=F64))
    far = (torch.arange(5)[:, None] - torch.arange(5)[None, :]).abs() > 1
    assert (h[:, :, far] == 0).all() and (h[:, :, ~far] > 0).all()


def test_axial_stride_pools_in_ceil_mode_and_resnet50_puts_it_in_place_of_every_3x3_conv():
    m = randomize_(make("axial", 8, stride=2)).eval()
    x = torch.randn(1, 8, 5, 6, dtype=F64)
    with torch.no_grad():
        full = m.width(m.height(x))
        torch.testing.assert_close(m(x), F.avg_pool2d(full, 2, ceil_mode=True), rtol=0, atol=0)
    assert m(x).shape == (1, 8, 3, 3)
    assert [paper_place(n).placement for n in ("axial", "ema", "outlook")] == ["conv", "block", "block"]
    net = attnlab.create_model("resnet50", num_classes=3, attention="axial", stem="cifar").eval()
    blocks = [blk for s in range(1, 5) for blk in getattr(net, f"layer{s}")]
    assert all(blk.attn_at == "conv" and blk.replaced == ("conv2", "bn2") for blk in blocks)
    assert all(isinstance(blk.attn, attnlab.get_attention("axial")) for blk in blocks)
    with torch.no_grad():
        assert net(torch.randn(1, 3, 20, 20)).shape == (1, 3)  # layer4 at 3×3: an odd size strided from 5×5


@pytest.mark.parametrize(("stride", "hw"), [(1, (5, 7)), (2, (5, 7)), (2, (6, 4)), (3, (7, 2))])
def test_outlook_export_path_of_slices_equals_im2col(stride, hw, monkeypatch):
    """ONNX exports get unfold / fold as shifted slices (no Col2Im at opset 17); eager runs F.unfold / F.fold."""
    from attnlab.layers import outlook

    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    eager = outlook.unfold(x, 3, stride)
    y = torch.randn_like(eager)
    folded = outlook.fold(y, 3, stride, hw)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    torch.testing.assert_close(outlook.unfold(x, 3, stride), eager, rtol=0, atol=0)
    torch.testing.assert_close(outlook.fold(y, 3, stride, hw), folded, rtol=0, atol=1e-12)
