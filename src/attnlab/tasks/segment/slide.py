"""Whole slides larger than memory, segmented block by block in bounded memory.

The slide is cut into core blocks of ``block`` pixels (a multiple of the tile step ``tile - overlap``). Each block
reads a window: the tiles of ``tiled_logits``' grid on the whole image (steps from 0, the last tile aligned to the
image's end) that cover its core grown by ``context`` and a guard, so that the logits there are those of
``tiled_logits`` on the whole image (the same tiles, blended in the same order). ``split_instances`` runs on that
region; an instance belongs to the block whose core holds the top-left corner of its connected component's bounding
box, so an object reaching at most ``context`` pixels past its block is found whole, and once, on a seam or not.
An object reaching further is cut (counted, and warned about): only its pixels within the context are kept. The
label image is a BigTIFF written core by core; owned objects that reach into later cores wait as small crops until
those are written. Memory: one window and the objects crossing seams, whatever the slide's size.

Shapes: a slide (H, W) or (H, W, C); a window's input (1, C, h, w); logits (1, maps, h, w); labels (h, w).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ...models.tiling import tile_starts, tile_weight  # the grid and the blend of tiled_logits, not a copy
from .instances import split_instances
from .objects import Object, objects_of, paste
from .slide_read import open_slide, release, slide_input, slide_levels

__all__ = [
    "open_slide",
    "slide_levels",
    "slide_input",
    "slide_logits",
    "segment_slide",
    "SlideResult",
]  # (reading: slide_read)

log = logging.getLogger(__name__)

# How far past an object split_instances looks: holes and small objects (< min_size px) are judged whole, and the
# distance map is smoothed over 4 px; its seeds and watershed run per connected component (instances.py), so the
# rest is local.
_SMOOTHING_REACH = 8


@dataclass(frozen=True)
class SlideResult:
    """``objects``: instances found (labels 1…objects); ``cut``: those cut at their block's edge because their
    connected component reached more than ``context`` px past it; ``shape``: (H, W); ``out``: the label image."""

    objects: int
    cut: int
    shape: tuple[int, int]
    blocks: int
    seconds: float
    out: Path | None


@dataclass(frozen=True)
class _Span:
    """One block along one axis, in slide pixels, [start, stop): ``core`` the pixels it writes; ``reach`` where
    an object it owns must end (the core's end + context); ``region`` where it finds instances; ``window`` what it
    reads: the grid's tiles (``tiles``, their starts) covering the region."""

    core: tuple[int, int]
    reach: int
    region: tuple[int, int]
    window: tuple[int, int]
    tiles: tuple[int, ...]


def _covering(size: int, tile: int, overlap: int, start: int, stop: int) -> tuple[tuple[int, ...], tuple[int, int]]:
    """The starts of tiled_logits' tiles (on an image of ``size``) covering [start, stop), and their union."""
    length = min(tile, size)
    tiles = tuple(s for s in tile_starts(size, tile, overlap) if s < stop and s + length > start)
    return tiles, (tiles[0], tiles[-1] + length)


def _spans(size: int, block: int, margin: int, context: int, tile: int, overlap: int) -> list[_Span]:
    spans = []
    for c0 in range(0, size, block):
        c1 = min(c0 + block, size)
        region = (max(0, c0 - margin), min(size, c1 + margin))
        tiles, window = _covering(size, tile, overlap, *region)
        spans.append(_Span((c0, c1), min(size, c1 + context), region, window, tiles))
    return spans


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device


def _window_logits(
    model: nn.Module,
    x: Tensor,
    rows: tuple[tuple[int, ...], tuple[int, int]],
    cols: tuple[tuple[int, ...], tuple[int, int]],
    shape: tuple[int, int],
    tile: int,
    overlap: int,
    cache: dict[tuple[int, int], Tensor],
    keep_from: int | None,
) -> tuple[Tensor, dict[tuple[int, int], Tensor]]:
    """Logits (1, maps, h, w) of a window's input ``x`` (1, C, h, w), ``rows`` and ``cols`` its tiles and extent,
    blended as tiled_logits blends the whole image (an image of ``shape``); tiles in ``cache`` are not run again.
    Also returns, for the next window, the tiles starting at column ``keep_from`` or after."""
    (top_tiles, (r0, _)), (left_tiles, (c0, _)) = rows, cols
    if shape[0] <= tile and shape[1] <= tile:  # tiled_logits' one forward pass
        return model(x), {}
    length_r, length_c = min(tile, shape[0]), min(tile, shape[1])
    out = weight = None
    kept = {}
    for top in top_tiles:
        for left in left_tiles:
            logits = cache.get((top, left))
            if logits is None:
                logits = model(x[..., top - r0 : top - r0 + length_r, left - c0 : left - c0 + length_c])
            if keep_from is not None and left >= keep_from:
                kept[top, left] = logits
            ph, pw = logits.shape[-2:]
            wgt = tile_weight(logits, overlap)
            if out is None:
                out = logits.new_zeros((*logits.shape[:2], *x.shape[-2:]))
                weight = logits.new_zeros(x.shape[-2:])
            out[..., top - r0 : top - r0 + ph, left - c0 : left - c0 + pw] += logits * wgt
            weight[top - r0 : top - r0 + ph, left - c0 : left - c0 + pw] += wgt
    return out / weight, kept


def _read(array, rows: tuple[int, int], cols: tuple[int, int], to_input) -> Tensor:
    raw = np.array(array[rows[0] : rows[1], cols[0] : cols[1]])  # a copy: the mapped pages can go
    release(array)
    x = to_input(raw)
    if tuple(x.shape[-2:]) != raw.shape[:2] or x.ndim != 4:
        raise ValueError(f"to_input: a window {raw.shape} gave {tuple(x.shape)}; expected (1, C, {raw.shape[0]}, …)")
    return x


@torch.no_grad()
def slide_logits(
    model: nn.Module, array, to_input: Callable[[np.ndarray], Tensor], rows, cols, *, tile: int, overlap: int
) -> Tensor:
    """``tiled_logits(model, whole input, tile, overlap)[..., rows, cols]`` (1, maps, h, w), ``rows`` and
    ``cols`` (start, stop) in slide pixels, reading only the slide's window the grid's covering tiles span."""
    h, w = array.shape[:2]
    for name, (start, stop), size in (("rows", rows, h), ("cols", cols, w)):
        if not 0 <= start < stop <= size:
            raise ValueError(f"{name}: expected (start, stop) with 0 <= start < stop <= {size}, got {(start, stop)}")
    row_tiles, col_tiles = _covering(h, tile, overlap, *rows), _covering(w, tile, overlap, *cols)
    x = _read(array, row_tiles[1], col_tiles[1], to_input).to(_device(model))
    logits, _ = _window_logits(model, x, row_tiles, col_tiles, (h, w), tile, overlap, {}, None)
    (r0, c0) = row_tiles[1][0], col_tiles[1][0]
    return logits[..., rows[0] - r0 : rows[1] - r0, cols[0] - c0 : cols[1] - c0]


def _shrunk(label: int, top: int, left: int, mask: np.ndarray) -> Object | None:
    """An object of ``mask``'s pixels (its top-left pixel at (top, left)), its box shrunk to them; None if none."""
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not ys.size:
        return None
    return Object(label, top + int(ys[0]), left + int(xs[0]), mask[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1])


def _clip(obj: Object, rows: tuple[int, int], cols: tuple[int, int]) -> Object | None:
    """``obj``'s pixels inside rows × cols, (start, stop) each."""
    r0, c0 = max(obj.top, rows[0]), max(obj.left, cols[0])
    mask = obj.mask[r0 - obj.top : max(rows[1] - obj.top, 0), c0 - obj.left : max(cols[1] - obj.left, 0)]
    return _shrunk(obj.label, r0, c0, mask)


def _without(obj: Object, others: list[Object]) -> Object | None:
    """``obj``'s pixels that none of ``others`` has."""
    mask = obj.mask.copy()
    for other in others:
        window = np.zeros(mask.shape, np.uint32)
        paste(window, replace(other, label=1), top=obj.top, left=obj.left)
        mask &= window == 0
    return _shrunk(obj.label, obj.top, obj.left, mask)


def _owned(instances: np.ndarray, rows: _Span, cols: _Span) -> list[tuple[Object | None, bool]]:
    """(object, cut) for the instances of a block's region (labels (h, w)) that the block owns, in label order, in
    slide pixels. Cut: the instance's component reaches past ``reach``; it is then clipped to the core grown right
    and down by the context (the component lies right of and below the core's top-left pixel)."""
    from scipy import ndimage as ndi

    top, left = rows.region[0], cols.region[0]
    components, _ = ndi.label(instances > 0, structure=np.ones((3, 3), bool))  # 8-connected: whole instances
    component_of = np.zeros(int(instances.max()) + 1, np.int64)
    component_of[instances.ravel()] = components.ravel()
    boxes = ndi.find_objects(components)
    owned = []
    for obj in objects_of(instances, top=top, left=left):
        box_rows, box_cols = boxes[component_of[obj.label] - 1]
        corner_r, corner_c = top + box_rows.start, left + box_cols.start
        if not (rows.core[0] <= corner_r < rows.core[1] and cols.core[0] <= corner_c < cols.core[1]):
            continue
        if top + box_rows.stop <= rows.reach and left + box_cols.stop <= cols.reach:
            owned.append((obj, False))
        else:
            owned.append((_clip(obj, (rows.core[0], rows.reach), (cols.core[0], cols.reach)), True))
    return owned


class _Labels:
    """Global labels 1, 2, … in block raster order, and the objects that reach into cores not written yet.

    Two objects never share a pixel: a component that fits its owner's context is found whole only there, and the
    clipped pieces of cut ones, the only objects that can meet, give way to the pieces pending before them."""

    def __init__(self, block: int, across: int):
        self.block, self.across = block, across  # the core's side, cores per row
        self.count = self.cut = 0
        self.pending: list[Object] = []
        self.cut_labels: set[int] = set()

    def take(self, owned: list[tuple[Object | None, bool]]) -> list[Object]:
        """A block's owned objects, labelled."""
        objects = []
        earlier_cuts = [o for o in self.pending if o.label in self.cut_labels]
        for obj, cut in owned:
            self.cut += cut
            if cut and obj is not None:
                obj = _without(obj, earlier_cuts)
            if obj is None:
                continue
            self.count += 1
            objects.append(replace(obj, label=self.count))
            if cut:
                self.cut_labels.add(self.count)
        return objects

    def _last_core(self, obj: Object) -> int:
        """The core of ``obj``'s bottom-right pixel: in raster order, the last core it reaches."""
        rows, cols = obj.box
        return (rows.stop - 1) // self.block * self.across + (cols.stop - 1) // self.block

    def written(self, rows: _Span, cols: _Span, objects: list[Object]) -> None:
        """Drop the objects whose last core is the one just written; keep the block's others."""
        here = rows.core[0] // self.block * self.across + cols.core[0] // self.block
        self.pending = [o for o in (*self.pending, *objects) if self._last_core(o) > here]
        self.cut_labels &= {o.label for o in self.pending}


class _LabelTiff:
    """A label image (H, W) uint32, an uncompressed BigTIFF created empty and written core by core at its byte
    offset, under a temporary name in the destination's folder until ``commit`` renames it (a killed run leaves no
    half file). Plain file writes: the pages are the page cache's, not this process's memory."""

    def __init__(self, path: Path, shape: tuple[int, int]):
        import tifffile

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.width = path, shape[1]
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")  # made by tifffile: the folder's permissions
        try:
            empty = {"shape": shape, "dtype": "<u4", "byteorder": "<", "photometric": "minisblack"}
            self.offset, _ = tifffile.imwrite(self.tmp, bigtiff=True, returnoffset=True, **empty)
            self.file = open(self.tmp, "r+b")  # noqa: SIM115  (closed by commit or abort)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, top: int, left: int, labels: np.ndarray) -> None:
        labels = np.ascontiguousarray(labels, dtype="<u4")
        if labels.shape[1] == self.width:  # full rows: one piece
            self.file.seek(self.offset + 4 * top * self.width)
            self.file.write(memoryview(labels).cast("B"))
            return
        for i, row in enumerate(labels):
            self.file.seek(self.offset + 4 * ((top + i) * self.width + left))
            self.file.write(memoryview(row).cast("B"))

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class _Bar:
    """Blocks done, objects, Mpx/s and the time left: a rich bar on a terminal (stderr), silent otherwise."""

    def __init__(self, blocks: int, enabled: bool):
        from rich.console import Console

        self.blocks, self.console, self.bar = blocks, Console(file=sys.stderr), None
        self.enabled = enabled and self.console.is_terminal
        self.start = time.perf_counter()

    def __enter__(self) -> _Bar:
        if self.enabled:
            from ...report.progress_bar import started_bar

            self.bar, self.task = started_bar("blocks", self.blocks, self.console)
        return self

    def advance(self, objects: int, pixels: int) -> None:
        if self.bar is not None:
            rate = pixels / 1e6 / max(time.perf_counter() - self.start, 1e-9)
            self.bar.update(self.task, advance=1, stats=f"{objects} objects  {rate:.2f} Mpx/s")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _check(array, tile: int, overlap: int, block: int, context: int, min_size: int) -> None:
    if array.ndim not in (2, 3):
        raise ValueError(f"array: a slide of shape {tuple(array.shape)}; expected (H, W) or (H, W, C)")
    if tile < 1:
        raise ValueError(f"--tile: expected at least 1, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"--overlap: expected 0 <= overlap < tile ({tile}), got {overlap}")
    if block < 1:
        raise ValueError(f"--block: expected at least 1, got {block}")
    if context < 0:
        raise ValueError(f"--context: expected 0 or more, got {context}")
    if min_size < 0:
        raise ValueError(f"--min-size: expected 0 or more, got {min_size}")


@dataclass(frozen=True)
class _Blocks:
    """What every block of one slide shares; ``instances`` segments one block's region."""

    model: nn.Module
    array: np.ndarray  # or any array sliced as array[rows, cols]: np.memmap, zarr
    predict: Callable[[Tensor], Tensor]
    to_input: Callable[[np.ndarray], Tensor]
    tile: int
    overlap: int
    min_size: int
    split_h: float

    def instances(
        self, rows: _Span, cols: _Span, cache: dict, keep_from: int | None
    ) -> tuple[np.ndarray, dict[tuple[int, int], Tensor]]:
        """Instance labels (h, w) of the block's region, and the tiles the next block reads too."""
        x = _read(self.array, rows.window, cols.window, self.to_input).to(_device(self.model))
        shape = self.array.shape[:2]
        grid = (rows.tiles, rows.window), (cols.tiles, cols.window)
        logits, cache = _window_logits(self.model, x, *grid, shape, self.tile, self.overlap, cache, keep_from)
        (r0, r1), (c0, c1) = rows.region, cols.region
        dr, dc = r0 - rows.window[0], c0 - cols.window[0]
        classes = self.predict(logits[..., dr : dr + r1 - r0, dc : dc + c1 - c0])  # (1, h, w)
        return split_instances((classes[0] > 0).cpu().numpy(), min_size=self.min_size, h=self.split_h), cache


@torch.no_grad()
def segment_slide(
    model: nn.Module,
    array,
    predict: Callable[[Tensor], Tensor],
    *,
    to_input: Callable[[np.ndarray], Tensor],
    tile: int,
    overlap: int,
    min_size: int,
    split_h: float,
    block: int = 2048,
    context: int = 128,
    out: Path | None = None,
    on_objects: Callable[[list[Object]], None] | None = None,
    progress: bool = True,
) -> SlideResult:
    """Instances of a slide ``array`` (H, W) or (H, W, C), block by block (see the module's docstring).

    ``to_input``: a window as read -> the model's input (1, C, h, w); ``predict``: logits (1, maps, h, w) -> class
    indices (1, h, w), the foreground the classes > 0; ``model`` in eval mode. ``block`` is rounded to a multiple
    of ``tile - overlap``. ``out``: the label image's path (a BigTIFF, uint32); ``on_objects``: called once per block
    with the objects it owns, in slide pixels, labelled as in the label image (1, 2, … in block raster order).
    """
    _check(array, tile, overlap, block, context, min_size)
    start = time.perf_counter()
    h, w = array.shape[:2]
    step = tile - overlap
    block = max(1, round(block / step)) * step
    margin = context + min_size + _SMOOTHING_REACH
    row_spans = _spans(h, block, margin, context, tile, overlap)
    col_spans = _spans(w, block, margin, context, tile, overlap)
    blocks = _Blocks(model, array, predict, to_input, tile, overlap, min_size, split_h)
    labels = _Labels(block, len(col_spans))
    writer = _LabelTiff(Path(out), (h, w)) if out is not None else None
    pixels = 0
    try:
        with _Bar(len(row_spans) * len(col_spans), progress) as bar:
            for rows in row_spans:
                cache: dict[tuple[int, int], Tensor] = {}  # tiles the next block of this row reads too
                for j, cols in enumerate(col_spans):
                    keep_from = col_spans[j + 1].window[0] if j + 1 < len(col_spans) else None
                    instances, cache = blocks.instances(rows, cols, cache, keep_from)
                    objects = labels.take(_owned(instances, rows, cols))
                    if on_objects is not None:
                        on_objects(objects)
                    if writer is not None:
                        _write_core(writer, rows, cols, [*labels.pending, *objects])
                    labels.written(rows, cols, objects)
                    pixels += (rows.core[1] - rows.core[0]) * (cols.core[1] - cols.core[0])
                    bar.advance(labels.count, pixels)
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if labels.cut:
        log.warning(
            "%d objects reached more than --context %d px past their block and were cut there; "
            "raise --context above the largest object's size in pixels",
            labels.cut,
            context,
        )
    seconds = time.perf_counter() - start
    return SlideResult(
        labels.count, labels.cut, (h, w), len(row_spans) * len(col_spans), seconds, Path(out) if out else None
    )


def _write_core(writer: _LabelTiff, rows: _Span, cols: _Span, objects: list[Object]) -> None:
    """Write a block's core: the objects over it (its own and those pending from earlier blocks)."""
    (r0, r1), (c0, c1) = rows.core, cols.core
    labels = np.zeros((r1 - r0, c1 - c0), np.uint32)
    for obj in objects:
        paste(labels, obj, top=r0, left=c0)
    writer.write(r0, c0, labels)
