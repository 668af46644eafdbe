"""Temperature scaling and the expected calibration error, for any task that classifies.

Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks" (ICML 2017). §4.2: one scalar
T > 0 divides every score before the softmax, q̂_i = max_k softmax(z_i / T)_k, T chosen to minimize the negative
log-likelihood on the validation split; T changes no argmax, so accuracy stays the same. §2 (Eq. 3): the expected
calibration error over M equal-width bins of confidence, ECE = Σ_m |B_m| / n · |acc(B_m) − conf(B_m)|.

Shapes: N samples, K classes; ``scores`` (N, K) the classifier's outputs (logits; a capsule head's lengths),
``probs`` (N, K) rows summing to 1, ``targets`` (N,) int64 class indices. Everything is computed in float64.
"""

from __future__ import annotations

import math

import torch
from scipy.optimize import minimize_scalar
from torch import Tensor

__all__ = [
    "ECE_BINS",
    "TEMPERATURE_BOUNDS",
    "calibrate",
    "calibrated_probabilities",
    "expected_calibration_error",
    "fit_temperature",
    "temperature_nll",
]

ECE_BINS = 15  # Guo et al.'s M
TEMPERATURE_BOUNDS = (1e-2, 1e2)  # the search's range of T (a split separated without error: the low end)
_GRID = 81  # points of the first search, equally spaced in log T (steps of 0.115)


def _checked(scores: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(f"scores: expected a (N, K) tensor with N >= 1 and K >= 2, got shape {tuple(scores.shape)}")
    if targets.shape != scores.shape[:1]:
        expected, got = scores.shape[0], tuple(targets.shape)
        raise ValueError(f"targets: expected shape ({expected},), one class per row of scores, got {got}")
    s = scores.detach().to("cpu", torch.float64)
    if not torch.isfinite(s).all():
        raise ValueError("scores: expected finite values, got inf or nan")
    t = targets.detach().to("cpu", torch.int64)
    if t.min() < 0 or t.max() >= s.shape[1]:
        raise ValueError(f"targets: expected classes in [0, {s.shape[1]}), got {t.min().item()} … {t.max().item()}")
    return s, t


def calibrated_probabilities(scores: Tensor, temperature: float) -> Tensor:
    """softmax(scores / T) over the last dimension, in float64: (…, K) -> (…, K)."""
    if not temperature > 0:
        raise ValueError(f"temperature: expected a number > 0, got {temperature}")
    return torch.softmax(scores.to(torch.float64) / temperature, dim=-1)


def temperature_nll(scores: Tensor, targets: Tensor, temperature: float) -> float:
    """The mean negative log-likelihood of ``targets`` under softmax(scores / T):
    −(1/N) Σ_i log softmax(z_i / T)_{y_i}."""
    if not temperature > 0:
        raise ValueError(f"temperature: expected a number > 0, got {temperature}")
    s, t = _checked(scores, targets)
    return _nll(s, t, math.log(temperature))


def _nll(s: Tensor, t: Tensor, log_t: float) -> float:
    logp = torch.log_softmax(s * math.exp(-log_t), dim=1)
    return max(0.0, -logp.gather(1, t[:, None]).mean().item())  # never −0 (or −1e-17) from rounding


def fit_temperature(scores: Tensor, targets: Tensor, *, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The T in ``bounds`` minimizing ``temperature_nll`` (Guo et al. §4.2), deterministic.

    The NLL is convex in 1/T (a log-sum-exp of linear functions of 1/T less a linear one), so it has one minimum
    over log T: the best of a grid of 81 points in log T, refined between that point's neighbours to 1e-9 in
    log T by SciPy's bounded Brent search (``minimize_scalar(method="bounded")``). A validation split that the
    scores separate without error has no minimum inside (the NLL falls as T -> 0): the lower bound comes back.
    Scores equal in every row: T = 1.
    """
    if not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"bounds: expected 0 < low < high, got {bounds}")
    s, t = _checked(scores, targets)
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    grid = torch.linspace(lo, hi, _GRID, dtype=torch.float64).tolist()
    values = [_nll(s, t, u) for u in grid]
    if max(values) - min(values) <= 1e-15:  # the NLL does not depend on T (every row's scores equal)
        return 1.0
    i = min(range(_GRID), key=values.__getitem__)
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, _GRID - 1)]
    found = minimize_scalar(lambda u: _nll(s, t, u), bounds=(a, b), method="bounded", options={"xatol": 1e-9})
    best = min([(values[i], grid[i]), (found.fun, found.x)])  # the grid point where the minimum is at a bound
    return math.exp(best[1])


def expected_calibration_error(probs: Tensor, targets: Tensor, bins: int = ECE_BINS) -> float:
    """Guo et al.'s Eq. 3: Σ_m |B_m| / n · |acc(B_m) − conf(B_m)|, where B_m holds the samples whose confidence
    (highest probability) lies in ((m − 1) / M, m / M], m = 1 … M (a confidence of 0 in the first bin); acc the
    fraction of B_m whose highest-probability class is the target, conf its mean confidence."""
    if bins < 1:
        raise ValueError(f"bins: expected an int >= 1, got {bins}")
    p, t = _checked(probs, targets)
    confidence, predicted = p.max(dim=1)
    correct = (predicted == t).to(torch.float64)
    which = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)  # (N,): the bin of each sample
    count = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, torch.ones_like(confidence))
    gap = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, correct - confidence)  # |B_m| (acc − conf)
    return (gap.abs().sum() / count.sum()).item()


def calibrate(scores: Tensor, targets: Tensor) -> dict[str, float]:
    """Temperature scaling fitted on (validation) ``scores`` and ``targets``: ``{"temperature", "val_nll_before",
    "val_nll_after", "val_ece_before", "val_ece_after"}``, "before" being softmax(scores) (T = 1)."""
    s, t = _checked(scores, targets)
    temperature = fit_temperature(s, t)
    return {
        "temperature": temperature,
        "val_nll_before": _nll(s, t, 0.0),
        "val_nll_after": _nll(s, t, math.log(temperature)),
        "val_ece_before": expected_calibration_error(calibrated_probabilities(s, 1.0), t),
        "val_ece_after": expected_calibration_error(calibrated_probabilities(s, temperature), t),
    }
