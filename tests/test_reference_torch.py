"""attnlab against PyTorch's own references: the encoder layer, the one-cycle schedule, the tiled inference blend."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from attnlab.engine.trainer import one_cycle
from attnlab.layers.encoder import EncoderLayer
from attnlab.models.tiling import tile_starts, tiled_logits

# ---------------------------------------------------------------------------------------------------------------------
# EncoderLayer = nn.TransformerEncoderLayer(norm_first=True, activation="gelu", batch_first=True)
# ---------------------------------------------------------------------------------------------------------------------

DIM, HEADS, FFN = 32, 4, 48  # an even number of heads: torch's fused encoder path needs one
# attnlab key -> torch key; q, k, v are torch's packed in_proj (concatenated along dim 0, in that order)
ENCODER_KEYS = {
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
    "ffn.0.weight": "linear1.weight",
    "ffn.0.bias": "linear1.bias",
    "ffn.3.weight": "linear2.weight",
    "ffn.3.bias": "linear2.bias",
}
PACKED = {"weight": "self_attn.in_proj_weight", "bias": "self_attn.in_proj_bias"}


def encoder_to_torch(sd):
    out = {t: sd[k] for k, t in ENCODER_KEYS.items()}
    for kind, t in PACKED.items():
        out[t] = torch.cat([sd[f"attn.{p}_proj.{kind}"] for p in "qkv"])
    return out


def encoder_from_torch(sd):
    out = {k: sd[t] for k, t in ENCODER_KEYS.items()}
    for kind, t in PACKED.items():
        for p, part in zip("qkv", sd[t].chunk(3), strict=True):
            out[f"attn.{p}_proj.{kind}"] = part
    return out


def encoder_pair(direction, dtype, dropout=0.1):
    torch.manual_seed(0)
    ours = EncoderLayer(DIM, HEADS, FFN, dropout).to(dtype)
    theirs = nn.TransformerEncoderLayer(
        DIM, HEADS, FFN, dropout=dropout, activation="gelu", norm_first=True, batch_first=True, dtype=dtype
    )
    src, dst = (ours, theirs) if direction == "attnlab->torch" else (theirs, ours)
    with torch.no_grad():  # no zero biases, no unit norms: every weight random
        for p in src.parameters():
            p.copy_(torch.randn_like(p) / math.sqrt(p.shape[-1] if p.dim() > 1 else 25))
    convert = encoder_to_torch if direction == "attnlab->torch" else encoder_from_torch
    dst.load_state_dict(convert(src.state_dict()), strict=True)
    return ours, theirs


def padding(lengths, length):
    """(B, L) True at the padding positions after each sequence's length."""
    return torch.arange(length)[None, :] >= torch.tensor(lengths)[:, None]


def test_the_encoder_key_maps_cover_both_state_dicts():
    ours, theirs = encoder_pair("attnlab->torch", torch.float32)
    assert sorted(encoder_to_torch(ours.state_dict())) == sorted(theirs.state_dict())
    assert sorted(encoder_from_torch(theirs.state_dict())) == sorted(ours.state_dict())


@pytest.mark.parametrize("direction", ["attnlab->torch", "torch->attnlab"])
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_layer_equals_torch_in_float64(direction, masked):
    ours, theirs = encoder_pair(direction, torch.float64)
    ours.eval(), theirs.eval()
    x = torch.randn(3, 9, DIM, dtype=torch.float64)
    pad = padding([9, 6, 2] if masked else [9, 9, 9], 9)
    with torch.no_grad():
        y, _ = ours(x, pad)
        ref = theirs(x, src_key_padding_mask=pad if masked else None)
    # with the layer alone the padded positions are computed too (their queries attend the real keys), in torch's
    # fused path and in its plain one; only nn.TransformerEncoder's nested tensors give zeros there
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)


def test_encoder_layer_equals_torchs_fused_path_in_float32(monkeypatch):
    """In eval mode without gradients torch runs its fused kernel (``torch._transformer_encoder_layer_fwd``)."""
    ours, theirs = encoder_pair("attnlab->torch", torch.float32)
    ours.eval(), theirs.eval()
    fused = torch._transformer_encoder_layer_fwd
    calls = []
    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", lambda *a, **k: calls.append(1) or fused(*a, **k))
    x = torch.randn(3, 9, DIM)
    pad = padding([9, 6, 2], 9)
    with torch.no_grad():
        y, _ = ours(x, pad)
        ref = theirs(x, src_key_padding_mask=pad)
    assert calls == [1]
    torch.testing.assert_close(y[~pad], ref[~pad], rtol=0, atol=1e-6)
    # the fused path keeps the padded positions as well (they are not zeroed): equal there too
    torch.testing.assert_close(y[pad], ref[pad], rtol=0, atol=1e-6)


@pytest.mark.parametrize("direction", ["attnlab->torch", "torch->attnlab"])
def test_encoder_layer_trains_as_torch_without_dropout(direction):
    """Training mode, dropout 0 (with dropout the masks are random, and torch also drops attention weights, which
    attnlab does not): equal outputs, input gradients and parameter gradients."""
    ours, theirs = encoder_pair(direction, torch.float64, dropout=0.0)
    ours.train(), theirs.train()
    x = torch.randn(3, 9, DIM, dtype=torch.float64)
    pad = padding([9, 6, 2], 9)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, _ = ours(x1, pad)
    y2 = theirs(x2, src_key_padding_mask=pad)
    torch.testing.assert_close(y1, y2, rtol=0, atol=1e-12)
    g = torch.randn_like(y1) * (~pad)[..., None]  # the loss sees the real positions only
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-12)
    ours_grads = encoder_to_torch({k: p.grad for k, p in ours.named_parameters()})
    torch.testing.assert_close(ours_grads, {k: p.grad for k, p in theirs.named_parameters()}, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------------
# one_cycle = SequentialLR(LinearLR, CosineAnnealingLR); not OneCycleLR's defaults
# ---------------------------------------------------------------------------------------------------------------------


def torch_lrs(total, base=0.2):
    """The learning rate of each of ``total`` + 1 steps of torch's linear warm-up then cosine decay to 1e-4·base."""
    up = max(1, round(0.25 * total))
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / 25, end_factor=1.0, total_iters=up)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - up), eta_min=base * 1e-4)
    with warnings.catch_warnings():  # SequentialLR steps its second scheduler with an epoch: a deprecation warning
        warnings.simplefilter("ignore")
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, decay], milestones=[up])
        lrs = []
        for _ in range(total + 1):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return lrs


@pytest.mark.parametrize("total", [2, 3, 7, 40, 1000])
def test_one_cycle_is_torchs_linear_warmup_then_cosine(total):
    base = 0.2
    ours = [base * one_cycle(step, total) for step in range(total + 1)]
    for step, (a, b) in enumerate(zip(ours, torch_lrs(total, base), strict=True)):
        assert a == pytest.approx(b, rel=1e-9, abs=0), step
    assert ours[0] == pytest.approx(base / 25) and ours[-1] == pytest.approx(base * 1e-4)
    assert max(ours) == pytest.approx(base) and ours.index(max(ours)) == max(1, round(0.25 * total))


def test_one_cycle_is_not_torchs_one_cycle_lr_defaults():
    """torch's OneCycleLR(max_lr, total_steps) defaults differ three ways: its warm-up is 30 % of the steps
    (pct_start=0.3; one_cycle's 25 %), cosine-shaped (anneal_strategy="cos" in both phases; one_cycle's warm-up is
    linear), and it ends at max_lr / (div_factor · final_div_factor) = max_lr / (25 · 1e4) = 4e-6 · max_lr
    (one_cycle's end 1e-4 · max_lr). Only the start, max_lr / 25, is the same."""
    total, base = 1000, 0.2
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=base, total_steps=total)
    theirs = []
    for _ in range(total):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [base * one_cycle(step, total) for step in range(total)]
    assert theirs[0] == pytest.approx(ours[0])  # max_lr / 25 for both
    # halfway through one_cycle's warm-up (step 125): linear, 0.04 + 0.96 · 125/250 = 0.52 of max_lr; OneCycleLR's
    # cosine over its 299 warm-up steps, 0.04 + 0.96 · (1 − cos(π · 125/299)) / 2 = 0.3978 of max_lr
    assert ours[125] / base == pytest.approx(0.52) and theirs[125] / base == pytest.approx(0.3978, abs=1e-4)
    assert theirs[-1] / base == pytest.approx(4e-6, rel=1e-3) and ours[-1] / base > 1e-4


# ---------------------------------------------------------------------------------------------------------------------
# tiled_logits: the documented blend, by hand in float64
# ---------------------------------------------------------------------------------------------------------------------


class ConvWithRamp(nn.Module):
    """A 5×5 conv with zero padding plus a coordinate ramp inside the patch: its output depends on where in the tile
    a pixel lies, so each tile gives every pixel another value and the blend weights decide the result."""

    def __init__(self, ramp: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 5, padding=2, dtype=torch.float64)
        self.ramp = ramp

    def forward(self, x):
        y = self.conv(x)
        if self.ramp:
            h, w = x.shape[-2:]
            i = torch.arange(h, dtype=x.dtype)[:, None] / h
            j = torch.arange(w, dtype=x.dtype)[None, :] / w
            y = y + 3 * i + 2 * j
        return y


def starts(size, tile, overlap):
    """The documented tiling: from 0, steps of tile − overlap while a tile fits, then one tile flush with the end."""
    if size <= tile:
        return [0]
    out = [0]
    while out[-1] + (tile - overlap) < size - tile:
        out.append(out[-1] + tile - overlap)
    return [*out, size - tile]


def ramp(n, overlap):
    """The documented weight along one axis: 1 in the middle, linear over ``overlap`` pixels from each end, never 0."""
    return torch.tensor([min(1.0, min(i + 1, n - i) / max(1, overlap)) for i in range(n)], dtype=torch.float64)


def blend_by_hand(model, image, tile, overlap, uniform=False):
    """Σ_tiles w_t · model(tile) / Σ_tiles w_t, w_t the product of the two axes' ramps (1 with ``uniform``)."""
    B, _, H, W = image.shape
    num = torch.zeros(B, 3, H, W, dtype=torch.float64)
    den = torch.zeros(H, W, dtype=torch.float64)
    for top in starts(H, tile, overlap):
        for left in starts(W, tile, overlap):
            with torch.no_grad():
                y = model(image[..., top : top + tile, left : left + tile])
            w = (
                torch.ones(tile, tile, dtype=torch.float64)
                if uniform
                else ramp(tile, overlap)[:, None] * ramp(tile, overlap)[None, :]
            )
            num[..., top : top + tile, left : left + tile] += w * y
            den[top : top + tile, left : left + tile] += w
    return num / den


@pytest.mark.parametrize(("size", "tile", "overlap"), [(50, 16, 6), (37, 16, 6), (40, 16, 0), (23, 9, 4)])
def test_tile_starts_are_the_documented_tiling(size, tile, overlap):
    s = tile_starts(size, tile, overlap)
    assert s == starts(size, tile, overlap)
    assert s[0] == 0 and s[-1] + tile == size  # covers [0, size)
    assert all(b - a <= tile - overlap for a, b in zip(s, s[1:], strict=False))  # overlapping by at least overlap


def test_tiled_logits_is_the_documented_blend():
    torch.manual_seed(1)
    model = ConvWithRamp(ramp=True)
    image = torch.randn(2, 2, 50, 37, dtype=torch.float64)  # 5 × 3 tiles, the last of each axis overlapping 12 and 11
    ours = tiled_logits(model, image, tile=16, overlap=6)
    ref = blend_by_hand(model, image, 16, 6)
    # the ramps are float32 in tiled_logits (i / overlap rounded to float32), hence 1e-6 and not 1e-12
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    # the weights matter here: a plain average of the tiles is far from it
    assert (blend_by_hand(model, image, 16, 6, uniform=True) - ours).abs().max() > 0.1
    # an image no larger than a tile is one forward pass
    small = image[..., :16, :11]
    torch.testing.assert_close(tiled_logits(model, small, tile=16, overlap=6), model(small), rtol=0, atol=0)


def test_tiled_logits_of_a_translation_equivariant_model_is_the_whole_image_result_away_from_tile_edges():
    torch.manual_seed(2)
    model = ConvWithRamp(ramp=False)  # a 5×5 conv: exact at 2 pixels or more from a tile edge inside the image
    H, W, tile, overlap, r = 50, 37, 16, 6, 2
    image = torch.randn(2, 2, H, W, dtype=torch.float64)
    ours = tiled_logits(model, image, tile=tile, overlap=overlap)
    with torch.no_grad():
        whole = model(image)
    # pixels that every tile covering them sees at r pixels or more from its edges (or at an edge on the image's)
    exact = torch.ones(H, W, dtype=torch.bool)
    covers = torch.zeros(H, W, dtype=torch.long)
    for top in starts(H, tile, overlap):
        for left in starts(W, tile, overlap):
            good = torch.zeros(tile, tile, dtype=torch.bool)
            t0, l0 = (0 if top == 0 else r), (0 if left == 0 else r)
            t1, l1 = (tile if top + tile == H else tile - r), (tile if left + tile == W else tile - r)
            good[t0:t1, l0:l1] = True
            exact[top : top + tile, left : left + tile] &= good
            covers[top : top + tile, left : left + tile] += 1
    assert exact.float().mean() > 0.4 and (exact & (covers > 1)).sum() > 300  # blends of several tiles among them
    torch.testing.assert_close(ours[..., exact], whole[..., exact], rtol=0, atol=1e-12)
    assert (ours - whole)[..., ~exact].abs().max() > 1e-3  # and the rest is a blend with wrong values, as expected
