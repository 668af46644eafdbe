"""Dense optical flow between frames: pyramidal Lucas–Kanade, in torch, batched and without parameters.

Lucas & Kanade (IJCAI 1981): brightness constancy I₁(p + u) = I₀(p), linearized, I_x u_x + I_y u_y + I_t = 0,
solved by least squares over a window around every pixel:

    [Σ I_x²   Σ I_x I_y] [u_x]     [Σ I_x I_t]
    [Σ I_x I_y   Σ I_y²] [u_y] = − [Σ I_y I_t]

Coarse to fine (Bouguet's pyramidal implementation, 2001): the flow of a level, doubled, warps the second frame
of the next finer level, which adds its own correction; a few warps per level (``iterations``) refine it. This
is scikit-image's ``optical_flow_ilk`` (its "iterative Lucas-Kanade") on a box window, as tensor operations: a
clip's flow runs in the same batch as its frames and exports with the network (ONNX, ``torch.export``).

Each warp's step is damped (Tikhonov: εI added to the 2×2 matrix, ε a thousandth of the image's mean gradient
power), so that a window without texture keeps the coarser level's flow where the bare solve returns
error / gradient, unbounded as the gradient goes to 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ClipFlow", "lucas_kanade"]

# the 2×2 system's regularizer, relative to its scale (trace²), so that the flow does not depend on the images'
# contrast; it keeps an edge's flow (the aperture problem) and a texture-free window's (0) finite
_RIDGE, _TINY = 1e-3, 1e-30
# Tikhonov damping of each warp's step, (A + εI) u = b + ε·flow, ε relative to the image's mean gradient power
# (so again free of contrast): a window far flatter than its image (compressed sky, a dark border) keeps the coarser
# level's flow instead of error / gradient, which grew without bound there (10³-10⁴ px on real clips, set by the
# last bit of the input); 1e-3 leaves a textured window's flow as it was (1e-2 slowed the warps' convergence)
_DAMPING = 1e-3


def _warp(image: Tensor, flow: Tensor) -> Tensor:
    """``image`` (N, 1, H, W) sampled at p + flow(p) (flow (N, 2, H, W) in pixels, x then y), borders repeated."""
    n, _, h, w = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=image.dtype, device=image.device),
        torch.arange(w, dtype=image.dtype, device=image.device),
        indexing="ij",
    )
    x = (xs + flow[:, 0]) * (2 / max(w - 1, 1)) - 1
    y = (ys + flow[:, 1]) * (2 / max(h - 1, 1)) - 1
    grid = torch.stack((x, y), dim=-1)  # (N, H, W, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _gradients(image: Tensor) -> tuple[Tensor, Tensor]:
    """Central differences (N, 1, H, W) along x and y, one-sided at the borders."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return gx, gy


def _window_sum(x: Tensor, window: int, dim: int) -> Tensor:
    """Sums of ``window`` consecutive values along ``dim`` (-1 or -2), centred, zeros beyond the borders."""
    n, r = x.shape[dim], window // 2
    padded = F.pad(x, (r, r) if dim == -1 else (0, 0, r, r))
    out = padded.narrow(dim, 0, n).clone()
    for k in range(1, window):
        out += padded.narrow(dim, k, n)
    return out


def _box_mean(x: Tensor, window: int) -> Tensor:
    """``x`` (N, C, H, W) averaged over the ``window``×``window`` box around each pixel, over the pixels inside the
    image (``avg_pool2d(count_include_pad=False)``'s numbers): the box is separable and its inside a rectangle, so
    two passes of shifted sums, divided by the rows' times the columns' count. Five times faster than
    ``avg_pool2d`` on CPU (80 % of the flow's time went there), and a flat region still averages to exactly 0
    (a running sum's differences would not)."""
    h, w = x.shape[-2:]
    rows = _window_sum(x.new_ones(1, 1, h, 1), window, -2)
    cols = _window_sum(x.new_ones(1, 1, 1, w), window, -1)
    return _window_sum(_window_sum(x, window, -1), window, -2) / (rows * cols)


def _solve(first: Tensor, second: Tensor, flow: Tensor, window: int) -> Tensor:
    """One warp of Lucas–Kanade: the flow (N, 2, H, W) that moves ``first`` onto ``second``, from the current
    ``flow``. The windowed system is solved for the whole flow, not an increment (as scikit-image's ILK):
    with w = second(p + flow) and g = ∇w, A u = Σ g (g·flow + first − w) averages the neighbours' flows into
    each pixel's, so that the warps converge instead of amplifying the per-pixel noise."""
    warped = _warp(second, flow)
    gx, gy = _gradients(warped)
    error = gx * flow[:, :1] + gy * flow[:, 1:] + first - warped

    products = torch.cat((gx * gx, gx * gy, gy * gy, gx * error, gy * error), dim=1)  # (N, 5, H, W)
    sxx, sxy, syy, bx, by = _box_mean(products, window).split(1, dim=1)
    damping = _DAMPING * (sxx + syy).mean((2, 3), keepdim=True)  # (N, 1, 1, 1): the image's gradient power
    sxx, syy = sxx + damping, syy + damping  # on the step: (A + εI) u = b + ε·flow
    bx, by = bx + damping * flow[:, :1], by + damping * flow[:, 1:]
    det = sxx * syy - sxy * sxy + _RIDGE * (sxx + syy).square() + _TINY
    return torch.cat(((syy * bx - sxy * by) / det, (sxx * by - sxy * bx) / det), dim=1)


def lucas_kanade(first: Tensor, second: Tensor, *, levels: int = 3, window: int = 7, iterations: int = 2) -> Tensor:
    """Flow (N, 2, H, W), in pixels (x, y), of ``first`` onto ``second``: grayscale images (N, 1, H, W), so that
    second(p + flow(p)) ≈ first(p). ``levels`` pyramid levels (each half the side; fewer where the image is
    small), a ``window``×``window`` box (odd), ``iterations`` warps per level."""
    if first.shape != second.shape or first.dim() != 4 or first.shape[1] != 1:
        raise ValueError(
            f"first, second: expected two grayscale batches (N, 1, H, W) of one shape, got {tuple(first.shape)} "
            f"and {tuple(second.shape)}"
        )
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window: expected an odd positive int, got {window}")
    pyramid = [(first, second)]
    while len(pyramid) < levels and min(pyramid[-1][0].shape[-2:]) >= 2 * window:
        a, b = pyramid[-1]
        pyramid.append((F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)))
    flow = None
    for a, b in reversed(pyramid):
        if flow is None:
            flow = a.new_zeros(a.shape[0], 2, *a.shape[-2:])
        else:  # the coarser level's flow at this level's size and scale
            flow = 2 * F.interpolate(flow, size=a.shape[-2:], mode="bilinear", align_corners=False)
        for _ in range(iterations):
            flow = _solve(a, b, flow, window)
    return flow


def _cell_means(x: Tensor, grid: int) -> Tensor:
    """(N, C, H, W) -> (N, C, grid, grid): means over equal cells (the last H mod grid rows and W mod grid
    columns left out); a reshape, where adaptive pooling would not export to ONNX."""
    n, c, h, w = x.shape
    h, w = h - h % grid, w - w % grid
    return x[..., :h, :w].reshape(n, c, grid, h // grid, grid, w // grid).mean((3, 5))


class ClipFlow(nn.Module):
    """clips (B, T, C, H, W) -> (B, T, 2·grid²): each frame's optical flow to the next frame (the last frame: the
    flow into it), averaged over ``grid``×``grid`` equal cells, x then y, in pixels of a 32-px-wide frame (× 32 / W: the
    same numbers at any frame size). A motion descriptor beside a frame's appearance features, as the temporal
    stream of two-stream networks (Simonyan & Zisserman, NeurIPS 2014) with the stream's network replaced by
    pooling: which way things move, where and when, is one linear function of it.

    No parameters and no gradient: the flow is computed in float32 (outside autocast) from the gray frames (the
    mean over channels; Lucas–Kanade does not depend on the channels' scale and offset)."""

    def __init__(self, grid: int = 4) -> None:
        super().__init__()
        if grid < 1:
            raise ValueError(f"grid: expected a positive int, got {grid}")
        self.grid = grid
        self.out_dim = 2 * grid * grid

    def forward(self, clips: Tensor) -> Tensor:
        B, T = clips.shape[:2]
        if T < 2:
            raise ValueError(f"clips: optical flow needs at least 2 frames (B, T, C, H, W), got {tuple(clips.shape)}")
        with torch.no_grad(), torch.autocast(clips.device.type, enabled=False):
            gray = clips.float().mean(2, keepdim=True)  # (B, T, 1, H, W)
            flow = lucas_kanade(gray[:, :-1].flatten(0, 1), gray[:, 1:].flatten(0, 1))  # (B·(T − 1), 2, H, W)
            cells = _cell_means(flow * (32 / clips.shape[-1]), self.grid).view(B, T - 1, self.out_dim)
        return torch.cat([cells, cells[:, -1:]], dim=1)
