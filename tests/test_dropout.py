"""layers.Dropout: nn.Dropout's mask (independent, kept with probability 1 − p, scaled by 1 / (1 − p)) from a
cheaper draw; counted against the binomial's standard error, lane by lane."""

import math

import pytest
import torch
from torch import nn

from attnlab.layers.dropout import LEVELS, Dropout, keep_mask

N = 1 << 22  # elements: the binomial standard error of a rate is at most 2.4e-4


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_each_lane_drops_at_the_rate_asked(p):
    """Each of a 64-bit draw's four 16-bit lanes drops at p′ (a lane whose top bit were always 0, as with a
    plain ``random_()`` on int64, would keep every element whose threshold lies below 0)."""
    torch.manual_seed(0)
    keep, scale = keep_mask(torch.Size([N]), p)
    p_used = round(p * LEVELS) / LEVELS
    assert abs(p_used - p) <= 0.5 / LEVELS
    assert scale == pytest.approx(1 / (1 - p_used), rel=1e-12)
    se = math.sqrt(p_used * (1 - p_used) / (N // 4))
    for lane in range(4):
        dropped = (~keep.view(-1, 4)[:, lane]).double().mean().item()
        assert abs(dropped - p_used) < 5 * se, (lane, dropped)


def test_neighbours_are_independent():
    """Neighbouring elements (inside one 64-bit draw and across two) are dropped independently."""
    torch.manual_seed(1)
    keep, _ = keep_mask(torch.Size([N]), 0.5)
    k = keep.double()
    for lag in (1, 4):
        both = (k[:-lag] * k[lag:]).mean().item()
        assert abs(both - 0.25) < 5 * math.sqrt(0.25 * 0.75 / N), lag


def test_values_gradients_and_mean():
    """Kept elements are x / (1 − p′), the others 0; the gradient is the same mask and scale; E[out] = x."""
    torch.manual_seed(2)
    x = torch.randn(64, 128, 96, dtype=torch.float64, requires_grad=True)
    drop = Dropout(0.3).train()
    y = drop(x)
    kept = y != 0
    scale = LEVELS / (LEVELS - round(0.3 * LEVELS))
    torch.testing.assert_close(y[kept], x[kept] * scale, rtol=0, atol=0)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, g * kept * scale, rtol=0, atol=0)
    ones = Dropout(0.3).train()(torch.ones(N))
    assert ones.mean().item() == pytest.approx(1.0, abs=5 * math.sqrt(0.3 / 0.7 / N))


def test_seeded_like_nn_dropout():
    x = torch.randn(8, 33, 7)
    drop = Dropout(0.25).train()
    torch.manual_seed(3)
    a = drop(x)
    torch.manual_seed(3)
    b = drop(x)
    c = drop(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(b, c)
    assert a.shape == x.shape and a.dtype == x.dtype


def test_identity_in_eval_at_zero_and_zeros_at_one():
    x = torch.randn(4, 5)
    torch.testing.assert_close(Dropout(0.5).eval()(x), x, rtol=0, atol=0)
    torch.testing.assert_close(Dropout(0.0).train()(x), x, rtol=0, atol=0)
    assert not Dropout(1.0).train()(x).any()


def test_in_place_and_bfloat16():
    torch.manual_seed(4)
    x = torch.randn(16, 64, dtype=torch.bfloat16)
    before = x.clone()
    y = Dropout(0.5, inplace=True).train()(x)
    assert y.data_ptr() == x.data_ptr() and y.dtype == torch.bfloat16
    kept = y != 0
    assert 0 < kept.sum() < kept.numel()
    torch.testing.assert_close(y[kept], before[kept] * 2, rtol=0, atol=0)


def test_a_drop_in_for_nn_dropout():
    """Same arguments, no state; a model's state dict is unchanged."""
    d = Dropout(0.2)
    assert isinstance(d, nn.Dropout) and d.p == 0.2 and not d.state_dict()
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)


def test_the_text_benchmark_swaps_in_torch_dropout():
    """benchmarks/text.py's fourth model: the text encoder with every Dropout now nn.Dropout's, nothing else."""
    from attnlab.bench.text import with_torch_dropout
    from attnlab.models.text import TextTransformer

    torch.manual_seed(0)
    ours = TextTransformer(vocab_size=50, num_classes=3, dim=16, depth=2, max_len=12, dropout=0.2).eval()
    count = sum(isinstance(m, Dropout) for m in ours.modules())
    assert count == 1 + 2 * 2  # the embeddings' and, per layer, the feed-forward's and the branches' (shared)
    torch.manual_seed(0)
    swapped = with_torch_dropout(
        TextTransformer(vocab_size=50, num_classes=3, dim=16, depth=2, max_len=12, dropout=0.2)
    ).eval()
    modules = list(swapped.modules())
    assert not any(isinstance(m, Dropout) for m in modules)
    assert sum(type(m) is nn.Dropout and m.p == 0.2 for m in modules) == count
    ids = torch.randint(2, 50, (4, 12))
    torch.testing.assert_close(swapped(ids), ours(ids), rtol=0, atol=0)
