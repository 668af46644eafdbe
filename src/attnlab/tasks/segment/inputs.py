"""What ``attnlab predict`` reads from a user's image file: its planes, channels and pixel size.

A file is read as planes (P, C, H, W): one plane for a 2-D image, P for a z-stack or time-lapse. The axes
come from ``--axes`` (``YX``, ``YXC``, ``CYX``, ``ZYX``, ``TYX``, ``ZCYX`` …, the letters tifffile and ImageJ
use, ``S`` the samples of an RGB pixel) or else from the file's OME or ImageJ metadata (tifffile's series
axes); ``--channel`` picks the channel to segment. The pixel size, in µm, comes from ``--pixel-size`` or the
file: OME's ``PhysicalSizeX``, ImageJ's calibration (a unit and the resolution), or a TIFF resolution in
centimetres (a resolution in inches is the dpi most writers put by default, not a calibration).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import read_array, squeezed

__all__ = ["Picture", "read_picture", "parse_axes", "pick_channel", "tiff_header", "AXES_LETTERS"]

AXES_LETTERS = "TZCSYXIQ"  # time, depth, channel, RGB samples, rows, columns; I and Q: tifffile's unknown planes
PLANE_AXES = "TZIQ"
MICRONS = {"um": 1.0, "µm": 1.0, "\\u00B5m": 1.0, "micron": 1.0, "microns": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4}


@dataclass
class Picture:
    """An input file as read. ``planes`` (P, C, H, W) in the file's dtype; ``plane_axis``: ``Z`` or ``T`` (the
    letter of the stack's axis) or None for one image; ``pixel_size`` in µm or None; ``colour``: an RGB image
    (its channels are averaged for a one-channel model)."""

    path: Path
    planes: np.ndarray
    plane_axis: str | None
    pixel_size: float | None
    colour: bool

    @property
    def stack(self) -> bool:
        return self.plane_axis is not None


def parse_axes(axes: str, ndim: int, where: str) -> str:
    """``axes`` checked against an array of ``ndim`` dimensions: known letters, each once, Y and X present."""
    axes = axes.upper()
    bad = sorted(set(axes) - set(AXES_LETTERS))
    if bad or len(set(axes)) != len(axes) or "Y" not in axes or "X" not in axes:
        raise ValueError(
            f"--axes: expected the array's axes as letters of {AXES_LETTERS}, each at most once, with Y and X "
            f"(e.g. YX, CYX, ZYX), got {axes!r}"
        )
    if len(axes) != ndim:
        raise ValueError(f"--axes: {where} has {ndim} dimensions, {axes!r} names {len(axes)}")
    return axes


def _tiff(path: Path) -> tuple[np.ndarray, str, float | None]:
    """(array, its axes, pixel size in µm or None) of a TIFF's first series."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        array, axes = series.asarray(), series.axes
        return array, axes, _pixel_size(tif)


def _pixel_size(tif) -> float | None:
    return _ome_size(tif) or _imagej_size(tif) or _tiff_size(tif)


def tiff_header(path: Path) -> tuple[tuple[int, ...], str, float | None] | None:
    """(shape, axes, pixel size in µm or None) of a TIFF's first series, read from its header alone (None for
    a file that is not a readable TIFF: ``read_picture`` says why)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(series.shape), series.axes, _pixel_size(tif)
    except Exception:  # noqa: BLE001  (read_picture reports it, naming the file)
        return None


def _ome_size(tif) -> float | None:
    import xml.etree.ElementTree as ET

    if not tif.is_ome or not tif.ome_metadata:
        return None
    pixels = next((e for e in ET.fromstring(tif.ome_metadata).iter() if e.tag.endswith("Pixels")), None)
    if pixels is None or pixels.get("PhysicalSizeX") is None:
        return None
    scale = MICRONS.get(pixels.get("PhysicalSizeXUnit", "µm"))
    return None if scale is None else float(pixels.get("PhysicalSizeX")) * scale


def _resolution(tif) -> float | None:
    """Pixels per unit along x, from the first page's XResolution tag."""
    tag = tif.pages[0].tags.get("XResolution")
    if tag is None:
        return None
    numerator, denominator = tag.value
    return numerator / denominator if numerator and denominator else None


def _imagej_size(tif) -> float | None:
    meta = tif.imagej_metadata or {}
    scale, per_unit = MICRONS.get(str(meta.get("unit", "")).strip()), _resolution(tif)
    return None if scale is None or not per_unit else scale / per_unit


def _tiff_size(tif) -> float | None:
    unit = tif.pages[0].tags.get("ResolutionUnit")
    per_unit = _resolution(tif)
    if unit is None or int(unit.value) != 3 or not per_unit:  # 3: centimetre
        return None
    return 1e4 / per_unit


def read_picture(
    path: Path, *, axes: str | None = None, channel: int | None = None, pixel_size: float | None = None
) -> Picture:
    """``path`` as planes (P, C, H, W); errors name the file and the option to fix."""
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            array, found, size = _tiff(path)
        except Exception as e:  # noqa: BLE001  (any reader failure is a file the user must fix)
            raise ValueError(f"{path}: not a readable TIFF ({type(e).__name__}: {e})") from None
        array, found = squeezed(array, found)
    else:
        array = read_array(path)
        found, size = ("YXS" if array.ndim == 3 else "YX"), None
    where = f"{path} (shape {tuple(array.shape)})"
    axes = parse_axes(axes, array.ndim, where) if axes else found
    colour = "S" in axes and array.shape[axes.index("S")] in (3, 4)  # RGB(A) pixels
    if "S" in axes and "C" in axes:
        raise ValueError(f"--axes: {axes!r} names channels twice (C and S); expected one of them")
    axes = axes.replace("S", "C")
    stacked = [a for a in axes if a in PLANE_AXES]
    if len(stacked) > 1:
        raise ValueError(
            f"{where}: axes {axes!r} hold {len(stacked)} stack axes ({', '.join(stacked)}); expected at most one "
            "(a z-stack or a time-lapse): split the file, or name its axes with --axes"
        )
    order = [*stacked, *("C" if "C" in axes else ""), "Y", "X"]
    planes = np.transpose(array, [axes.index(a) for a in order])  # (P?, C?, H, W)
    planes = planes if "C" in axes else planes[..., None, :, :]
    planes = planes if stacked else planes[None]  # (P, C, H, W)
    planes = pick_channel(planes[:, :3] if colour else planes, channel, where)
    plane_axis = ("Z" if stacked[0] in "IQ" else stacked[0]) if stacked else None
    size = pixel_size if pixel_size is not None else size
    return Picture(path, planes, plane_axis, size, colour and channel is None)


def pick_channel(planes: np.ndarray, channel: int | None, where: str) -> np.ndarray:
    channels = planes.shape[1]
    if channel is None:
        return planes
    if not 0 <= channel < channels:
        raise ValueError(f"--channel: {where} has {channels} channel(s) (0-{channels - 1}), got {channel}")
    return planes[:, channel : channel + 1]
