"""Whole slides in bounded memory: time and peak RSS of segment_slide on synthetic slides.

python benchmarks/slide.py                                   # 2048², 8192², 16384² px, the task's default U-Net
python benchmarks/slide.py --sizes 16384 --model threshold   # the streaming alone, without the network's cost

Slides: discs of radius 6-12 px on a background with noise, uint16, uncompressed TIFFs (memory-mapped), written
into --folder (a temporary one, removed at the end, by default). Each size runs in a fresh subprocess, so its peak
RSS (ru_maxrss) is that size's own; "at start" is the child's peak before streaming (Python, torch, the model).
``unet``: res_attention_unet, width 16, depth 4, randomly initialised (what is measured is the time per pixel),
its foreground a threshold on its logits covering as many pixels as the discs; ``threshold``: the normalized
input > 0.5.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

MODELS = ("unet", "threshold")


class Threshold(nn.Module):
    """One logit map, the normalized input - 0.5: the discs exactly, at no cost."""

    def forward(self, x):
        return x - 0.5


def write_slide(path: Path, size: int, seed: int = 0, band: int = 1024) -> float:
    """A size × size uint16 TIFF of discs (3000 + noise) on a background (1000 + noise), written band by band into
    a memory map; the discs' share of the pixels."""
    import tifffile

    rng = np.random.default_rng(seed)
    n = size * size // 1600  # one disc per 40 × 40 px
    ys, xs, rs = rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(6, 13, n)
    order = np.argsort(ys)
    ys, xs, rs = ys[order], xs[order], rs[order]
    image = tifffile.memmap(path, shape=(size, size), dtype=np.uint16)
    covered = 0
    for top in range(0, size, band):
        rows = min(band, size - top)
        mask = np.zeros((rows, size), bool)
        first, last = np.searchsorted(ys, [top - 12, top + rows + 12])
        for y, x, r in zip(ys[first:last], xs[first:last], rs[first:last], strict=True):
            y0, y1, x0, x1 = max(y - r, top), min(y + r + 1, top + rows), max(x - r, 0), min(x + r + 1, size)
            if y0 >= y1:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            mask[y0 - top : y1 - top, x0:x1] |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        noise = rng.standard_normal((rows, size), dtype=np.float32) * 60
        image[top : top + rows] = (np.where(mask, 3000, 1000) + noise).clip(0, 65535).astype(np.uint16)
        covered += int(mask.sum())
    image.flush()
    del image
    return covered / size**2


def build(model: str, array, to_input, share: float, tile: int, overlap: int):
    """(model, predict) for ``model``. The U-Net's foreground: the side of a threshold on its logits that follows
    the discs (random weights may invert them), covering their ``share`` of a centre crop."""
    from attnlab.models.registry import create_model
    from attnlab.models.tiling import tiled_logits

    if model == "threshold":
        return Threshold(), lambda logits: (logits > 0).long()[:, 0]
    torch.manual_seed(0)
    net = create_model("res_attention_unet", in_chans=1, num_classes=1, width=16, depth=4).eval()
    h, w = array.shape[:2]
    side = min(512, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = to_input(np.array(array[top : top + side, left : left + side]))
    with torch.no_grad():
        logits = tiled_logits(net, x, tile, overlap).flatten()
    sign = 1.0 if torch.corrcoef(torch.stack([logits, x.flatten()]))[0, 1] >= 0 else -1.0
    threshold = float((sign * logits).quantile(1 - share))
    return net, lambda logits: (sign * logits > threshold).long()[:, 0]


def child(args) -> None:
    """One slide, in this process: prints one JSON line."""
    import time

    from attnlab.tasks.segment.slide import open_slide, segment_slide, slide_input, slide_levels

    torch.set_num_threads(args.threads)
    array = open_slide(args.slide)
    start = time.perf_counter()
    levels = slide_levels(array)
    levels_s = time.perf_counter() - start
    to_input = slide_input(levels)
    net, predict = build(args.model, array, to_input, args.share, args.tile, args.overlap)
    at_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    files = None
    if args.rois:  # the ImageJ ROI set, written block by block as predict writes it, then read back
        from attnlab.tasks.segment.slide_outputs import SlideFiles

        files = SlideFiles(array, args.slide.stem, args.slide.parent, ["rois"], class_name="nucleus", pixel_size=None)
    result = segment_slide(
        net,
        array,
        predict,
        to_input=to_input,
        tile=args.tile,
        overlap=args.overlap,
        min_size=16,
        split_h=2.0,
        block=args.block,
        context=args.context,
        out=args.slide.with_name(args.slide.stem + "-labels.tif"),
        on_objects=None if files is None else files.add,
        progress=False,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    row = {"seconds": result.seconds, "levels_s": levels_s, "objects": result.objects, "cut": result.cut}
    if files is not None:
        import roifile

        zipped = files.close()["rois"]
        row["rois"] = len(roifile.roiread(zipped))  # what Fiji's ROI Manager opens
        zipped.unlink()
    print(json.dumps({**row, "at_start_mib": at_start / 1024, "peak_mib": peak / 1024}))


def run(args, size: int, folder: Path) -> dict:
    slide = folder / f"slide-{size}.tif"
    # written by a process of its own: a child's ru_maxrss starts from its parent's peak (Linux keeps it across
    # exec), which writing the slide would raise to the slide's size
    made = subprocess.run([sys.executable, __file__, "--write", str(slide), "--size", str(size)], capture_output=True)
    if made.returncode:
        raise RuntimeError(f"{size} px: writing the slide failed\n{made.stderr.decode()}")
    share = float(made.stdout.decode().strip())
    command = [sys.executable, __file__, "--child", str(slide), "--share", str(share)]
    for flag in ("model", "tile", "overlap", "block", "context", "threads"):
        command += [f"--{flag}", str(getattr(args, flag))]
    command += ["--rois"] if args.rois else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{size} px: the child failed\n{done.stderr}")
    for path in (slide, slide.with_name(slide.stem + "-labels.tif")):
        path.unlink(missing_ok=True)
    return {"size": size, **json.loads(done.stdout.strip().splitlines()[-1])}


def to_markdown(rows: list[dict], args) -> str:
    from attnlab.measure.machine import machine

    model = (
        "res_attention_unet (width 16, depth 4, random weights)"
        if args.model == "unet"
        else "the threshold model (no network)"
    )
    lines = [
        f"segment_slide, {model}, tile {args.tile}, overlap {args.overlap}, block {args.block}, context "
        f"{args.context}, a BigTIFF label image written; synthetic uint16 slides (uncompressed TIFF, memory-mapped); "
        f"{machine()}. `python benchmarks/slide.py`. Levels: slide_levels' subsample, not in the seconds.",
        "",
        "| size | Mpx | seconds | Mpx/s | levels s | peak RSS MiB | at start MiB | objects | cut | ROIs read back |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mpx = r["size"] ** 2 / 1e6
        rois = f"{r['rois']:,}" if "rois" in r else "—"
        lines.append(
            f"| {r['size']}² | {mpx:.1f} | {r['seconds']:.1f} | {mpx / r['seconds']:.3f} | {r['levels_s']:.1f} | "
            f"{r['peak_mib']:.0f} | {r['at_start_mib']:.0f} | {r['objects']:,} | {r['cut']:,} | {rois} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="2048,8192,16384", help="slide sides in pixels, comma-separated")
    p.add_argument("--folder", type=Path, default=None, help="where the slides go (default: a temporary folder)")
    p.add_argument("--model", choices=MODELS, default="unet")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--block", type=int, default=2048)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads in the child")
    p.add_argument("--rois", action="store_true", help="also write the ROI set as predict does, and read it back")
    p.add_argument("--child", type=Path, default=None, dest="slide", help=argparse.SUPPRESS)
    p.add_argument("--share", type=float, default=0.1, help=argparse.SUPPRESS)
    p.add_argument("--write", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.write is not None:
        print(write_slide(args.write, args.size))
        return 0
    if args.slide is not None:
        child(args)
        return 0
    torch.set_num_threads(args.threads)  # machine() names the child's thread count
    folder = args.folder or Path(tempfile.mkdtemp(prefix="attnlab-slides-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        rows = []
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(run(args, size, folder))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(to_markdown(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
