"""Reading the segmentation task's files: images in their own dtype (8- or 16-bit PNG, TIFF, JPEG; TIFFs of several
channels) and masks,
either instance labels (binary masks, each connected region one instance, or 16/32-bit labels) or class indices.
Errors name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "read_array", "squeezed", "to_chw", "read_mask", "read_class_mask"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def squeezed(array: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    """Dimensions of size 1 dropped, from the array and its axes alike (Y and X kept)."""
    keep = [i for i, n in enumerate(array.shape) if n > 1 or axes[i] in "YX"]
    return array.reshape([array.shape[i] for i in keep]), "".join(axes[i] for i in keep)


def _tiff(path: Path) -> tuple[np.ndarray, str]:
    """(array, axes) of a TIFF's first series, the axes of size 1 dropped (tifffile's letters: ``C`` channels,
    ``S`` an RGB pixel's samples, ``Z`` ``T`` ``Q`` ``I`` planes)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return squeezed(series.asarray(), series.axes)


def read_array(path: Path) -> np.ndarray:
    """An image file as an array (H, W) or (H, W, C), in its own dtype; errors name the file.

    RGB(A) pixels: (H, W, 3), alpha dropped; gray + alpha: (H, W). A TIFF whose axes (ImageJ's or OME's
    metadata, tifffile's ``series.axes``) name channels, ``CYX`` (a fluorescence image of nuclei and cytoplasm,
    as Fiji saves it) or ``YXC``: (H, W, C), every channel kept. Any other third axis (a z-stack, a time-lapse,
    planes of no name) is refused: training takes 2-D images (predict reads stacks: ``inputs.read_picture``)."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            a, axes = _tiff(path)
        else:
            from PIL import Image

            with Image.open(path) as im:
                a = np.asarray(im)
            a = np.squeeze(a) if a.ndim > 2 and 1 in a.shape[:-1] else a
            axes = "YXS" if a.ndim == 3 else "YX"
    except Exception as e:  # noqa: BLE001  (any reader failure is a file the user must fix)
        raise ValueError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    if a.ndim == 3 and "C" in axes and axes.replace("C", "") == "YX":  # channels: all kept, last
        return np.moveaxis(a, axes.index("C"), -1)
    if a.ndim == 3 and "S" in axes and axes.replace("S", "") == "YX":  # samples last (a planar RGB TIFF: SYX)
        a, axes = np.moveaxis(a, axes.index("S"), -1), "YXS"
    if a.ndim == 3 and axes == "YXS" and a.shape[-1] in (2, 3, 4):  # gray + alpha, RGB, RGBA
        return a[..., 0] if a.shape[-1] == 2 else a[..., :3]
    if a.ndim == 3:
        raise ValueError(
            f"{path}: a stack of shape {a.shape} (axes {axes}); expected one 2-D image (H, W), (H, W, 3), or "
            "channels (C, H, W) named CYX in the TIFF's metadata (tifffile.imwrite(..., metadata={'axes': 'CYX'}))"
        )
    if a.ndim != 2:
        raise ValueError(f"{path}: an array of shape {a.shape}; expected one 2-D image (H, W) or (H, W, 3)")
    return a


def to_chw(image: np.ndarray) -> np.ndarray:
    """An image as read, (H, W) or (H, W, C) -> channels first (C, H, W)."""
    return image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)


def read_mask(path: Path) -> np.ndarray:
    """Instance labels (H, W) int64 from a mask file: 8-bit masks are binary (0/1 or 0/255; each connected
    foreground region one instance), 16- or 32-bit masks are instance labels (0 = background)."""
    from skimage.measure import label

    m = read_array(path)
    if m.ndim != 2:
        raise ValueError(f"{path}: a mask of shape {m.shape}; expected one 2-D label image (H, W)")
    values = np.unique(m)
    if m.dtype in (np.uint8, np.bool_):
        if not set(values.tolist()) <= {0, 1} and not set(values.tolist()) <= {0, 255}:
            shown = values[:8].tolist()
            raise ValueError(
                f"{path}: an 8-bit mask with values {shown}; expected a binary mask (0/255 or 0/1), "
                "or instance labels saved as a 16-bit image"
            )
        return label(m > 0, connectivity=1).astype(np.int64)
    if not np.issubdtype(m.dtype, np.integer) or values.min() < 0:
        raise ValueError(f"{path}: a {m.dtype} mask; expected non-negative integer instance labels")
    return m.astype(np.int64)


def read_class_mask(path: Path, classes: int) -> np.ndarray:
    """Class indices (H, W) int64 from a mask file of any integer depth: 0 background, 1…``classes``."""
    m = read_array(path)
    if m.ndim != 2:
        raise ValueError(f"{path}: a mask of shape {m.shape}; expected one 2-D image of class indices (H, W)")
    if not (np.issubdtype(m.dtype, np.integer) or m.dtype == np.bool_):
        raise ValueError(f"{path}: a {m.dtype} mask; expected integer class indices 0-{classes}")
    values = np.unique(m)
    if values.min() < 0 or values.max() > classes:
        raise ValueError(
            f"{path}: a mask with values {values[:8].tolist()}; expected class indices 0-{classes} "
            f"(--classes {classes}: 0 background, 1-{classes} the classes)"
        )
    return m.astype(np.int64)
