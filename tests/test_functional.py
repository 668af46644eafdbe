"""attnlab.scaled_dot_product_attention against float64 references and torch's SDPA."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from attnlab import scaled_dot_product_attention as sdpa

BACKENDS = ("math", "fused", "auto")


def reference(q, k, v, allowed=None, additive=None, scale=None):
    """The formula in float64 loops over heads; ``allowed`` (B, Hq, L, S) bool, ``additive`` float."""
    q, k, v = q.double(), k.double(), v.double()
    B, Hq, L, E = q.shape
    H = k.shape[1]
    scale = 1 / math.sqrt(E) if scale is None else scale
    out = torch.zeros(B, Hq, L, v.shape[-1], dtype=torch.float64)
    weights = torch.zeros(B, Hq, L, k.shape[2], dtype=torch.float64)
    for b, h in itertools.product(range(B), range(Hq)):
        kv = h // (Hq // H)
        s = q[b, h] @ k[b, kv].T * scale
        if additive is not None:
            s = s + additive[b, h].double()
        if allowed is not None:
            s = s.masked_fill(~allowed[b, h], float("-inf"))
        for i in range(L):
            if torch.isinf(s[i]).all():
                continue  # no key to attend: zeros by attnlab's definition
            w = torch.softmax(s[i], dim=-1)
            weights[b, h, i] = w
            out[b, h, i] = w @ v[b, kv]
    return out, weights


def rand_qkv(B=2, Hq=4, H=2, L=5, S=7, E=8, Ev=6, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, Hq, L, E, generator=g, dtype=dtype),
        torch.randn(B, H, S, E, generator=g, dtype=dtype),
        torch.randn(B, H, S, Ev, generator=g, dtype=dtype),
    )


SHAPES = [  # (B, Hq, H, L, S, E, Ev)
    (2, 4, 4, 5, 7, 8, 8),
    (1, 2, 2, 1, 9, 4, 3),  # L = 1
    (2, 2, 2, 6, 1, 4, 5),  # S = 1
    (2, 8, 2, 7, 7, 16, 4),  # GQA, Ev != E
    (3, 3, 1, 9, 4, 5, 5),  # multi-query, L > S
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "padding", "causal", "causal+bool+padding"])
def test_matches_float64_reference(shape, backend, mask_kind):
    B, Hq, H, L, S, E, Ev = shape
    q, k, v = rand_qkv(B, Hq, H, L, S, E, Ev, seed=hash((shape, mask_kind)) % 1000)
    g = torch.Generator().manual_seed(1)
    allowed = torch.ones(B, Hq, L, S, dtype=torch.bool)
    additive, kwargs, args = None, {}, ()
    if "bool" in mask_kind:
        m = torch.rand(L, S, generator=g) > 0.3
        allowed &= m
        args = (m,)
    if mask_kind == "float":
        m = torch.randn(B, 1, L, S, generator=g, dtype=torch.float64)
        additive = m.expand(B, Hq, L, S)
        args = (m,)
    if "padding" in mask_kind:
        pad = torch.rand(B, S, generator=g) > 0.6
        allowed &= ~pad[:, None, None, :]
        kwargs["key_padding_mask"] = pad
    if "causal" in mask_kind:
        allowed &= torch.ones(L, S, dtype=torch.bool).tril()
        kwargs["is_causal"] = True
    ref_out, ref_w = reference(q, k, v, allowed, additive)
    out = sdpa(q, k, v, *args, enable_gqa=Hq != H, backend=backend, **kwargs)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    if backend != "fused":
        out, w = sdpa(q, k, v, *args, enable_gqa=Hq != H, backend=backend, return_weights=True, **kwargs)
        torch.testing.assert_close(w, ref_w, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_matches_torch_sdpa(backend, dtype):
    for seed in range(4):
        q, k, v = rand_qkv(2, 4, 2, 6, 9, 8, 8, dtype=dtype, seed=seed)
        mask = torch.rand(2, 1, 6, 9, generator=torch.Generator().manual_seed(seed)) > 0.2
        mask[..., 0] = True  # no empty rows: torch and attnlab agree there only by convention
        for kwargs in ({}, {"attn_mask": mask}, {"is_causal": True}, {"scale": 0.3}):
            expected = F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **kwargs)
            got = sdpa(q, k, v, enable_gqa=True, backend=backend, **kwargs)
            tol = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}[dtype]
            torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


def test_causal_is_top_left_tril_when_lengths_differ():
    q, k, v = rand_qkv(1, 1, 1, 3, 5, 4, 4)
    _, w = sdpa(q, k, v, is_causal=True, return_weights=True)
    assert torch.equal(w[0, 0] > 0, torch.ones(3, 5, dtype=torch.bool).tril())
    q, k, v = rand_qkv(1, 1, 1, 5, 3, 4, 4)
    torch.testing.assert_close(sdpa(q, k, v, is_causal=True), F.scaled_dot_product_attention(q, k, v, is_causal=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fully_masked_rows_give_zeros_not_nan(backend):
    q, k, v = rand_qkv(2, 2, 2, 4, 5, 4, 4)
    q.requires_grad_(True)
    bool_mask = torch.ones(4, 5, dtype=torch.bool)
    bool_mask[1] = False
    float_mask = torch.zeros(4, 5, dtype=torch.float64)
    float_mask[2] = float("-inf")
    pad = torch.tensor([[True] * 5, [False] * 5])  # sample 0 has only padding
    for args, kwargs, empty in (
        ((bool_mask,), {}, (slice(None), 1)),
        ((float_mask,), {}, (slice(None), 2)),
        ((), {"key_padding_mask": pad}, (0, slice(None))),
    ):
        out = sdpa(q, k, v, *args, backend=backend, **kwargs)
        assert torch.isfinite(out).all()
        rows = out[:, :, empty[1]] if empty[0] == slice(None) else out[empty[0]]
        assert torch.equal(rows, torch.zeros_like(rows))
        (grad,) = torch.autograd.grad(out.sum(), q)
        assert torch.isfinite(grad).all()
        if backend != "fused":
            _, w = sdpa(q, k, v, *args, backend=backend, return_weights=True, **kwargs)
            assert torch.isfinite(w).all()


def test_math_backend_is_stable_for_huge_logits():
    q = torch.full((1, 1, 2, 4), 1e8)
    k = torch.full((1, 1, 3, 4), 1.0)
    v = torch.randn(1, 1, 3, 2)
    out, w = sdpa(q, k, v, scale=1.0, backend="math", return_weights=True)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 1, 2))


def test_weights_are_those_applied_to_v_even_with_dropout():
    q, k, v = rand_qkv(2, 2, 2, 5, 6, 4, 3)
    torch.manual_seed(3)
    out, w = sdpa(q, k, v, dropout_p=0.5, return_weights=True)
    torch.testing.assert_close(out, w @ v)
    assert (w == 0).any()  # dropout was applied
    torch.testing.assert_close(sdpa(q, k, v, dropout_p=0.0), reference(q, k, v)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_float64(backend):
    q, k, v = (t.requires_grad_(True) for t in rand_qkv(1, 2, 1, 3, 4, 3, 2))
    mask = torch.tensor([[True, False, True, True], [False, False, False, False], [True, True, False, True]])

    def fn(q, k, v):  # GQA, a bool mask combined with causal, and one row with no key (zero output)
        return sdpa(q, k, v, mask, enable_gqa=True, is_causal=True, backend=backend)

    assert torch.autograd.gradcheck(fn, (q, k, v))


def test_grad_matches_torch():
    q, k, v = (t.requires_grad_(True) for t in rand_qkv(2, 4, 2, 5, 6, 8, 8))
    grads = torch.autograd.grad(sdpa(q, k, v, enable_gqa=True, backend="math").square().sum(), (q, k, v))
    expected = torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, enable_gqa=True).square().sum(), (q, k, v))
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda q, k, v: sdpa(q, k[:1], v[:1]), ["batch", "q"]),
        (lambda q, k, v: sdpa(q, k, v[:, :, :3]), ["k, v", "S"]),
        (lambda q, k, v: sdpa(q, k[..., :3], v), ["q, k", "E"]),
        (lambda q, k, v: sdpa(q, k, v), ["enable_gqa=True"]),
        (lambda q, k, v: sdpa(q[:, :3], k, v, enable_gqa=True), ["Hq=3", "multiple"]),
        (
            lambda q, k, v: sdpa(q, k, v, torch.ones(3, 7, dtype=torch.bool), enable_gqa=True),
            ["attn_mask", "(2, 4, 5, 7)"],
        ),
        (lambda q, k, v: sdpa(q, k, v, torch.ones(5, 7, dtype=torch.long), enable_gqa=True), ["attn_mask", "dtype"]),
        (
            lambda q, k, v: sdpa(q, k, v, key_padding_mask=torch.ones(2, 6, dtype=torch.bool), enable_gqa=True),
            ["key_padding_mask", "(2, 7)"],
        ),
        (lambda q, k, v: sdpa(q.long(), k, v, enable_gqa=True), ["q:", "floating"]),
        (lambda q, k, v: sdpa(q.float(), k, v, enable_gqa=True), ["dtype", "float32"]),
        (lambda q, k, v: sdpa(q, k, v, dropout_p=1.0, enable_gqa=True), ["dropout_p", "[0, 1)"]),
        (lambda q, k, v: sdpa(q, k, v, dropout_p=-0.1, enable_gqa=True), ["dropout_p"]),
        (lambda q, k, v: sdpa(q, k, v, backend="flash", enable_gqa=True), ["backend", "'flash'"]),
        (lambda q, k, v: sdpa(q[0], k[0], v[0], enable_gqa=True), ["q:", "4 dims"]),
        (lambda q, k, v: sdpa(q, k, v, enable_gqa=True, backend="fused", return_weights=True), ["return_weights"]),
    ],
)
def test_bad_input_is_refused_with_a_named_argument(call, names):
    q, k, v = rand_qkv(2, 4, 2, 5, 7, 8, 6)
    with pytest.raises(ValueError) as e:
        call(q, k, v)
    for name in names:
        assert name in str(e.value)
