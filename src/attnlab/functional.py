"""Scaled dot-product attention: the formula as a runnable reference, and torch's fused kernels.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V          (Vaswani et al., 2017, Eq. 1)

Shape legend (as in ``torch.nn.functional.scaled_dot_product_attention``):
    B  batch            L  query length          E   query/key feature size (d_k)
    Hq query heads      S  key/value length      Ev  value feature size (d_v)
    H  key/value heads (H = Hq, or H divides Hq with ``enable_gqa=True``)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["scaled_dot_product_attention", "BACKENDS"]

BACKENDS = ("auto", "math", "fused")


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    *,
    key_padding_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    return_weights: bool = False,
    backend: str = "auto",
) -> Tensor | tuple[Tensor, Tensor]:
    """softmax(q kᵀ · scale + mask) v, with torch's semantics for every argument torch has.

    Args:
        q: queries (B, Hq, L, E).
        k: keys (B, H, S, E).
        v: values (B, H, S, Ev).
        attn_mask: broadcastable to (B, Hq, L, S). Bool: True = may attend (as torch's functional;
            note ``torch.nn.MultiheadAttention`` uses the opposite). Float: added to the scores.
        key_padding_mask: (B, S). Bool: True = padding, never attended. Float: added to the scores.
        dropout_p: dropout on the attention weights, applied whenever > 0 (as torch's functional,
            independent of any module's training mode).
        is_causal: query i attends to keys j <= i, the top-left ``tril(diagonal=0)`` of L×S as in torch.
            Unlike torch, it combines with ``attn_mask`` and ``key_padding_mask``.
        scale: multiplies the scores; default 1/√E.
        enable_gqa: grouped-query attention: query head h uses key/value head h // (Hq / H).
        return_weights: also return the weights (B, Hq, L, S) applied to v (after dropout).
        backend: "math" (the formula in plain tensor ops), "fused" (torch's SDPA kernels) or
            "auto" (fused unless weights are requested, then math).

    Returns:
        (B, Hq, L, Ev), or ``(out, weights)`` with ``return_weights=True``.

    A query row that may attend to no key at all gets a zero output and zero weights (and zero
    gradients), never NaN, on every backend.

    The "math" backend is this, made numerically stable by softmax's row-max subtraction::

        scores = (q * scale) @ k.transpose(-2, -1) + mask     # (B, Hq, L, S)
        weights = softmax(scores, dim=-1)                      # each row sums to 1
        out = weights @ v                                      # (B, Hq, L, Ev)
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    _check_qkv(q, k, v, enable_gqa)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p: expected a value in [0, 1), got {dropout_p}")
    if scale is not None and not math.isfinite(scale):
        raise ValueError(f"scale: expected a finite number or None, got {scale}")
    if return_weights and backend == "fused":
        raise ValueError("return_weights=True: the fused kernels never form the weights; use backend='math' or 'auto'")

    B, Hq, L, _ = q.shape
    S = k.shape[-2]
    mask, empty_rows = _combine_masks(
        attn_mask,
        key_padding_mask,
        is_causal and (attn_mask is not None or key_padding_mask is not None),
        q,
        (B, Hq, L, S),
    )
    # With no other mask, causal needs no tensor: the kernels take the flag, and no row is ever empty.
    causal_flag = is_causal and mask is None

    if backend == "math" or return_weights:
        out, weights = _math(q, k, v, mask, causal_flag, dropout_p, scale)
    else:
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=dropout_p,
            is_causal=causal_flag,
            scale=scale,
            enable_gqa=bool(Hq != k.shape[1]),  # a Python bool even while tracing (export)
        )
        weights = None

    if empty_rows is not None:
        out = out.masked_fill(empty_rows, 0.0)
        if weights is not None:
            weights = weights.masked_fill(empty_rows, 0.0)
    return (out, weights) if return_weights else out


def _math(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    is_causal: bool,
    dropout_p: float,
    scale: float | None,
) -> tuple[Tensor, Tensor]:
    """The formula in plain tensor ops; returns (out (B, Hq, L, Ev), weights (B, Hq, L, S))."""
    B, Hq, L, E = q.shape
    H, S = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    # Grouped-query: view the Hq query heads as (H, Hq/H) so each key/value head broadcasts over its
    # group, the repeat_interleave semantics of torch without materializing repeated keys and values.
    group = Hq // H
    # scores is a fresh buffer (matmul's backward needs q and k, not its output), so the mask is
    # applied in place; without autograd the softmax is too: one (L, S) buffer where naive code holds two.
    scores = (q * scale).view(B, H, group, L, E) @ k.unsqueeze(2).transpose(-2, -1)  # (B, H, group, L, S)
    scores = scores.view(B, Hq, L, S)
    if is_causal:
        mask = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        if mask.dtype == torch.bool:
            scores.masked_fill_(~mask, float("-inf"))
        else:
            scores.add_(mask)
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (q, k, v, mask))
    if needs_grad:
        weights = torch.softmax(scores, dim=-1)  # subtracts the row max: logits of 1e8 stay finite
    else:  # the same softmax, in place: exp(s - max) / sum
        weights = scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()
        weights.div_(weights.sum(dim=-1, keepdim=True))
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    out = weights.view(B, H, group, L, S) @ v.unsqueeze(2)  # (B, H, group, L, Ev)
    return out.view(B, Hq, L, v.shape[-1]), weights


def _combine_masks(
    attn_mask: Tensor | None,
    key_padding_mask: Tensor | None,
    is_causal: bool,
    q: Tensor,
    target: tuple[int, int, int, int],
) -> tuple[Tensor | None, Tensor | None]:
    """Merge the masks into one the kernels take, and find the query rows with no key to attend.

    Returns ``(mask, empty_rows)``: mask bool (True = attend) or float (added), broadcastable to
    ``target`` = (B, Hq, L, S); empty_rows bool, broadcastable to (B, Hq, L, 1), or None without masks.
    Empty rows are opened to every key, so no kernel divides 0 by 0 in the forward or the backward
    pass, and the caller zeroes their output. (No ``.any()`` test: that would sync a GPU every call.)
    """
    B, _, L, S = target
    parts: list[Tensor] = []
    if attn_mask is not None:
        parts.append(_check_mask("attn_mask", attn_mask, target))
    if key_padding_mask is not None:
        kpm = _check_mask("key_padding_mask", key_padding_mask, (B, S), exact=True)
        parts.append(~kpm.view(B, 1, 1, S) if kpm.dtype == torch.bool else kpm.view(B, 1, 1, S))
    if is_causal:
        parts.append(torch.ones(L, S, dtype=torch.bool, device=q.device).tril())
    if not parts:
        return None, None

    if all(p.dtype == torch.bool for p in parts):
        mask = parts[0]
        for p in parts[1:]:
            mask = mask & p
        empty = ~mask.any(dim=-1, keepdim=True)
        return mask | empty, empty

    floats = [
        torch.zeros(p.shape, dtype=q.dtype, device=q.device).masked_fill(~p, float("-inf"))
        if p.dtype == torch.bool
        else p.to(q.dtype)
        for p in parts
    ]
    mask = floats[0]  # one float mask (a module's position logits): no copy of an (L, S)-sized tensor to sum it
    for p in floats[1:]:
        mask = mask + p
    # a row is empty when its largest entry is -inf: one reduction, no (L, S) boolean tensor (and ONNX has no
    # isneginf); detached, as the test needs no gradient
    empty = mask.detach().amax(dim=-1, keepdim=True) == float("-inf")
    return mask.masked_fill(empty, 0.0), empty


def _check_mask(name: str, mask: Tensor, target: tuple[int, ...], exact: bool = False) -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name}: expected a Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise ValueError(f"{name}: expected a bool or floating-point tensor, got dtype {mask.dtype}")
    shape = tuple(mask.shape)
    if exact:
        if shape != target:
            raise ValueError(f"{name}: expected shape {target}, got {shape}")
        return mask
    try:
        ok = len(shape) <= len(target) and torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected a shape broadcastable to (B, Hq, L, S) = {target}, got {shape}")
    return mask


def _check_qkv(q: Tensor, k: Tensor, v: Tensor, enable_gqa: bool) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        if t.dim() != 4:
            raise ValueError(f"{name}: expected 4 dims (B, heads, length, features), got shape {tuple(t.shape)}")
    if not q.dtype == k.dtype == v.dtype:
        raise ValueError(f"q, k, v: expected one dtype, got q {q.dtype}, k {k.dtype}, v {v.dtype}")
    if not q.shape[0] == k.shape[0] == v.shape[0]:
        raise ValueError(f"q, k, v: expected the same batch size B, got q {q.shape[0]}, k {k.shape[0]}, v {v.shape[0]}")
    if k.shape[1] != v.shape[1] or k.shape[2] != v.shape[2]:
        raise ValueError(f"k, v: expected the same (H, S), got k {tuple(k.shape[1:3])}, v {tuple(v.shape[1:3])}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q, k: expected the same feature size E, got q {q.shape[-1]}, k {k.shape[-1]}")
    hq, h = q.shape[1], k.shape[1]
    if hq != h:
        if hq % h != 0:
            raise ValueError(f"q, k: query heads Hq={hq} must be a multiple of key/value heads H={h}")
        if not enable_gqa:
            raise ValueError(
                f"q, k: query heads Hq={hq} differ from key/value heads H={h}; "
                "pass enable_gqa=True for grouped-query attention"
            )
