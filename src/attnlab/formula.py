"""Where Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V comes from, in numbers.

Two measurements back ``attnlab formula`` and docs/formula.md:

* :func:`worked_example`: three tokens with d_k = 4, every step of the formula.
* :func:`scaling_study`: why the scores are divided by √d_k. For q, k with independent
  unit-variance entries, q·k = Σ q_i k_i has variance d_k, so raw scores grow like √d_k; softmax
  over such scores puts almost all weight on one key, and its Jacobian diag(p) − p pᵀ, through which
  every gradient flows, goes to zero. Dividing by √d_k keeps the score variance at 1 for every d_k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .functional import scaled_dot_product_attention

__all__ = ["WorkedExample", "ScalingRow", "worked_example", "scaling_study", "DEFAULT_DIMS"]

DEFAULT_DIMS = (4, 16, 64, 256, 1024)


@dataclass(frozen=True)
class WorkedExample:
    """Each step of the formula on L = S = 3 tokens, float64."""

    q: Tensor  # (3, d_k) queries
    k: Tensor  # (3, d_k) keys
    v: Tensor  # (3, d_v) values
    scores: Tensor  # (3, 3) Q Kᵀ: row i holds query i's similarity to every key
    scaled: Tensor  # (3, 3) Q Kᵀ / √d_k
    weights: Tensor  # (3, 3) softmax over each row: non-negative, rows sum to 1
    output: Tensor  # (3, d_v) weights @ V: each output row is a weighted average of the value rows
    library_output: Tensor  # (3, d_v) the same through attnlab.scaled_dot_product_attention


def worked_example(d_k: int = 4, seed: int = 0) -> WorkedExample:
    """The formula step by step, on small numbers rounded to one decimal so they can be checked by hand."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(3, d_k, generator=g, dtype=torch.float64).mul(10).round().div(10) for _ in range(3))
    scores = q @ k.T
    scaled = scores / math.sqrt(d_k)
    weights = torch.softmax(scaled, dim=-1)
    output = weights @ v
    library = scaled_dot_product_attention(q[None, None], k[None, None], v[None, None], backend="math")[0, 0]
    return WorkedExample(q, k, v, scores, scaled, weights, output, library)


@dataclass(frozen=True)
class ScalingRow:
    """Statistics of dot-product scores and their softmax at one d_k, without and with the 1/√d_k."""

    d_k: int
    std_raw: float  # std of q·k: about √d_k
    std_scaled: float  # std of q·k / √d_k: about 1
    max_weight_raw: float  # mean largest softmax weight over the keys
    max_weight_scaled: float
    jacobian_raw: float  # mean Frobenius norm of the softmax Jacobian diag(p) − p pᵀ
    jacobian_scaled: float


def _softmax_stats(scores: Tensor) -> tuple[float, float]:
    """(mean largest weight, mean ‖diag(p) − p pᵀ‖_F) of softmax over the last dim of (n, S) scores."""
    p = torch.softmax(scores, dim=-1)
    jacobian = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (n, S, S)
    return p.amax(dim=-1).mean().item(), torch.linalg.matrix_norm(jacobian).mean().item()


def scaling_study(
    dims: tuple[int, ...] = DEFAULT_DIMS, *, num_keys: int = 16, samples: int = 2000, seed: int = 0
) -> list[ScalingRow]:
    """Measure raw and scaled scores of random unit-variance queries against ``num_keys`` keys."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for d in dims:
        q = torch.randn(samples, 1, d, generator=g, dtype=torch.float64)
        k = torch.randn(samples, num_keys, d, generator=g, dtype=torch.float64)
        raw = (q @ k.transpose(-2, -1)).squeeze(1)  # (samples, num_keys)
        scaled = raw / math.sqrt(d)
        max_raw, jac_raw = _softmax_stats(raw)
        max_scaled, jac_scaled = _softmax_stats(scaled)
        rows.append(ScalingRow(d, raw.std().item(), scaled.std().item(), max_raw, max_scaled, jac_raw, jac_scaled))
    return rows
