"""MultiHeadAttention against torch.nn.MultiheadAttention; SelfAttention2d against the formula."""

import pytest
import torch
from torch import nn

from attnlab import MultiHeadAttention, SelfAttention2d, scaled_dot_product_attention


def make_torch_mha(batch_first, kdim=None, vdim=None, bias=True, seed=0):
    torch.manual_seed(seed)
    m = nn.MultiheadAttention(16, 4, bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first, dtype=torch.float64)
    with torch.no_grad():  # torch initializes biases to zero: give them values so they are tested
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return m.eval()


def inputs(batch_first, B=3, L=5, S=6, kdim=16, vdim=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (lambda n, d: (B, n, d)) if batch_first else (lambda n, d: (n, B, d))
    return (
        torch.randn(*shape(L, 16), generator=g, dtype=torch.float64),
        torch.randn(*shape(S, kdim), generator=g, dtype=torch.float64),
        torch.randn(*shape(S, vdim), generator=g, dtype=torch.float64),
    )


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize(("kdim", "vdim"), [(None, None), (10, 7)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "padding", "3d", "causal"])
@pytest.mark.parametrize("average", [True, False])
def test_from_torch_matches_torch(batch_first, kdim, vdim, bias, mask_kind, average):
    tm = make_torch_mha(batch_first, kdim, vdim, bias)
    am = MultiHeadAttention.from_torch(tm)
    q, k, v = inputs(batch_first, kdim=kdim or 16, vdim=vdim or 16)
    g = torch.Generator().manual_seed(2)
    kwargs = {}
    if mask_kind == "bool":
        m = torch.rand(5, 6, generator=g) > 0.7  # True = blocked
        m[:, 0] = False
        kwargs["attn_mask"] = m
    elif mask_kind == "float":
        kwargs["attn_mask"] = torch.randn(5, 6, generator=g, dtype=torch.float64)
    elif mask_kind == "padding":
        pad = torch.zeros(3, 6, dtype=torch.bool)
        pad[0, 3:] = True
        pad[2, :2] = True
        kwargs["key_padding_mask"] = pad
    elif mask_kind == "3d":
        m = torch.rand(3 * 4, 5, 6, generator=g) > 0.7
        m[..., 1] = False
        kwargs["attn_mask"] = m
    ours_kwargs = dict(kwargs)
    if mask_kind == "causal":  # torch's is_causal is a hint that needs the mask; attnlab's applies it
        kwargs = {"attn_mask": torch.ones(5, 6, dtype=torch.bool).triu(1), "is_causal": True}
        ours_kwargs = {"is_causal": True}
    expected, expected_w = tm(q, k, v, need_weights=True, average_attn_weights=average, **kwargs)
    got, got_w = am(q, k, v, need_weights=True, average_attn_weights=average, **ours_kwargs)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_w, expected_w)
    fused, none = am(q, k, v, **ours_kwargs)
    assert none is None
    torch.testing.assert_close(fused, expected)


def test_self_attention_default_and_unbatched():
    tm = make_torch_mha(True)
    am = MultiHeadAttention.from_torch(tm)
    x = torch.randn(4, 5, 16, dtype=torch.float64)
    torch.testing.assert_close(am(x)[0], tm(x, x, x)[0])
    torch.testing.assert_close(am(x[0], need_weights=True)[1], tm(x[0], x[0], x[0])[1])
    assert am(x[0])[0].shape == (5, 16)


def test_to_torch_round_trip():
    am = MultiHeadAttention(16, 4, kdim=12, vdim=8, batch_first=False, dtype=torch.float64)
    q, k, v = inputs(False, kdim=12, vdim=8)
    tm = am.to_torch()
    assert not tm.batch_first
    torch.testing.assert_close(tm(q, k, v)[0], am(q, k, v)[0])
    back = MultiHeadAttention.from_torch(tm)
    torch.testing.assert_close(back(q, k, v)[0], am(q, k, v)[0])


def test_grouped_query_heads_match_repeated_kv_heads():
    torch.manual_seed(0)
    gqa = MultiHeadAttention(32, 8, num_kv_heads=2, dtype=torch.float64).eval()
    assert gqa.k_proj.weight.shape == (8, 32)  # 2 kv heads · head_dim 4
    full = MultiHeadAttention(32, 8, dtype=torch.float64).eval()
    with torch.no_grad():
        full.q_proj.load_state_dict(gqa.q_proj.state_dict())
        full.out_proj.load_state_dict(gqa.out_proj.state_dict())
        for src, dst in ((gqa.k_proj, full.k_proj), (gqa.v_proj, full.v_proj)):
            # kv head j serves query heads 4j..4j+3: repeat each head's rows 4 times
            dst.weight.copy_(src.weight.view(2, 1, 4, 32).expand(2, 4, 4, 32).reshape(32, 32))
            dst.bias.copy_(src.bias.view(2, 1, 4).expand(2, 4, 4).reshape(32))
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    out, w = gqa(x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, full(x)[0])
    torch.testing.assert_close(w, full(x, need_weights=True, average_attn_weights=False)[1])
    with pytest.raises(ValueError, match="num_kv_heads"):
        gqa.to_torch()


def test_dropout_only_in_training():
    m = MultiHeadAttention(16, 4, dropout=0.5)
    x = torch.randn(2, 5, 16)
    m.eval()
    torch.testing.assert_close(m(x)[0], m(x)[0])
    m.train()
    assert not torch.allclose(m(x)[0], m(x)[0])


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: MultiHeadAttention(10, 4), "num_heads"),
        (lambda: MultiHeadAttention(16, 4, num_kv_heads=3), "num_kv_heads"),
        (lambda: MultiHeadAttention(16, 4, dropout=1.5), "dropout"),
        (lambda: MultiHeadAttention.from_torch(nn.MultiheadAttention(16, 4, add_bias_kv=True)), "add_bias_kv"),
        (lambda: MultiHeadAttention(16, 4)(torch.randn(2, 5, 12)), "query"),
        (lambda: MultiHeadAttention(16, 4)(torch.randn(2, 5, 16), attn_mask=torch.ones(4, 4)), "attn_mask"),
        (lambda: SelfAttention2d(16, 3), "qk_channels"),
        (lambda: SelfAttention2d(16, 2, v_channels=8, out_proj=False), "out_proj"),
    ],
)
def test_bad_arguments_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (8, 8)])
def test_self_attention_2d_matches_formula(hw):
    torch.manual_seed(0)
    m = SelfAttention2d(12, num_heads=3, qk_channels=6, v_channels=9, dtype=torch.float64)
    x = torch.randn(2, 12, *hw, dtype=torch.float64, requires_grad=True)
    out, w = m(x, need_weights=True)
    assert out.shape == x.shape and w.shape == (2, 3, hw[0] * hw[1], hw[0] * hw[1])
    # the same computation written as linear algebra on tokens
    t = x.flatten(2).transpose(1, 2)  # (B, N, C)
    W, b = m.qkv.weight.flatten(1), m.qkv.bias
    q, k, v = (t @ W.T + b).split([6, 6, 9], dim=-1)
    heads = lambda z: z.unflatten(-1, (3, -1)).transpose(1, 2)  # noqa: E731
    ref = scaled_dot_product_attention(heads(q), heads(k), heads(v), backend="math")  # scale 1/√2
    ref = ref.transpose(1, 2).flatten(2) @ m.proj.weight.flatten(1).T + m.proj.bias
    torch.testing.assert_close(out, ref.transpose(1, 2).reshape_as(x))
    torch.testing.assert_close(m(x), out)  # fused path agrees
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
