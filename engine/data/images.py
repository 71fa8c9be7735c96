"""Image folders: one sub-folder per class, PNG or JPEG files inside, read with Pillow.

The images are resized to the Input node's shape (channels, height, width): one channel
reads them as grayscale, three as RGB. Pixel values are scaled to 0..1. Until the network's
shape is known the Dataset holds only the labels (see `Dataset.load_inputs`).
Every problem is a DataError naming the folder or the image file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.dataset import Dataset
from engine.errors import DataError

SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGES = 100_000
MAX_VALUES = 50_000_000  # pixels x channels x images held in memory (400 MB of float64)
MAX_IMAGE_PIXELS = 40_000_000  # a single image larger than this is refused before decoding
SCALE = 1.0 / 255.0

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ImageFolder:
    """The classes (sub-folder names, sorted) and the image files of each."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[tuple[Path, ...], ...]

    def samples(self) -> list[tuple[Path, int]]:
        """(file, class index) of every image, class by class."""
        return [(f, k) for k, group in enumerate(self.files) for f in group]


def scan_image_folder(folder: PathLike) -> ImageFolder:
    """List the classes and images of `folder`, or raise a DataError saying what is wrong."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"The folder '{folder}' does not exist; check its name.")
    if not root.is_dir():
        raise DataError(f"'{folder}' is a file; choose a folder with one sub-folder of "
                        "images per class.")
    try:
        subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"The folder '{folder}' could not be read: {exc.strerror or exc}.") \
            from exc
    if not subs:
        raise DataError(f"The folder '{root.name}' has no sub-folders; put the images of each "
                        "class in a sub-folder named after the class (e.g. cats/, dogs/).")
    if len(subs) < 2:
        raise DataError(f"The folder '{root.name}' has one class folder ('{subs[0].name}'); "
                        "a classifier needs at least two.")
    files = []
    total = 0
    for sub in subs:
        found = tuple(sorted(p for p in sub.iterdir()
                             if p.is_file() and p.suffix.lower() in SUFFIXES))
        if not found:
            raise DataError(f"The class folder '{root.name}/{sub.name}' has no PNG or JPEG "
                            "images; add some or remove the folder.")
        total += len(found)
        if total > MAX_IMAGES:
            raise DataError(f"The folder '{root.name}' holds more than {MAX_IMAGES:,} images; "
                            "use a smaller sample.")
        files.append(found)
    return ImageFolder(root, tuple(s.name for s in subs), tuple(files))


def image_files(paths: list[PathLike]) -> list[Path]:
    """The PNG/JPEG files named, and those in the folders named (recursively, sorted)."""
    out: list[Path] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"'{given}' does not exist; give image files or folders of them.")
    if not out:
        raise DataError(f"There are no PNG or JPEG images in {', '.join(map(str, paths))}.")
    if len(out) > MAX_IMAGES:
        raise DataError(f"{len(out):,} images are more than {MAX_IMAGES:,}; predict fewer.")
    return out


def check_image_folder(folder: PathLike) -> ImageFolder:
    """`scan_image_folder`, then open every image's header: a file that is not a PNG or
    JPEG image Pillow can read is named in a DataError. Fast (pixels are not decoded)."""
    from PIL import Image, UnidentifiedImageError

    found = scan_image_folder(folder)
    for path, _ in found.samples():
        try:
            with Image.open(path) as img:
                img.size  # noqa: B018  (the header was parsed)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"The image '{path.relative_to(found.root)}' could not be read "
                            f"({exc}); replace or remove it.") from exc
    return found


def image_mode(shape: tuple[int, ...]) -> tuple[str, int, int]:
    """(Pillow mode "L" or "RGB", height, width) for a per-sample input shape."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        return ("L" if shape[0] == 1 else "RGB"), shape[1], shape[2]
    if len(shape) == 2:
        return "L", shape[0], shape[1]
    want = "×".join(str(d) for d in shape)
    raise DataError(
        f"Images need an Input with a shape [channels, height, width] and 1 (grayscale) or "
        f"3 (RGB) channels, not {want}. Set the Input's shape, e.g. [1, 28, 28].")


def read_image(path: Path, shape: tuple[int, ...], root: Path | None = None) -> np.ndarray:
    """One image as float64 values in 0..1, resized to `shape` (C, H, W) or (H, W)."""
    from PIL import Image, UnidentifiedImageError

    mode, h, w = image_mode(shape)
    name = str(path.relative_to(root)) if root is not None else str(path)
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise DataError(f"The image '{name}' is {img.width}×{img.height} pixels, too "
                                "large to read; shrink it first.")
            img = img.convert(mode).resize((w, h), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.float64) * SCALE
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise DataError(f"The image '{name}' could not be read ({exc}); replace or remove "
                        "it.") from exc
    return arr.transpose(2, 0, 1) if arr.ndim == 3 else arr.reshape(
        (1, h, w) if len(shape) == 3 else (h, w))


def read_images(folder: ImageFolder, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The images `rows` (indices into `folder.samples()`) as an (N, *shape) array."""
    image_mode(shape)
    samples = folder.samples()
    n = len(rows)
    if n * int(np.prod(shape)) > MAX_VALUES:
        raise DataError(
            f"{n:,} images of shape {'×'.join(map(str, shape))} are more than Gradscape "
            f"holds in memory ({MAX_VALUES:,} values); use smaller images or fewer of them.")
    out = np.empty((n, *shape), dtype=np.float64)
    for i, r in enumerate(rows):
        out[i] = read_image(samples[int(r)][0], shape, folder.root)
    return out


def load_image_folder(folder: PathLike, shape: tuple[int, ...] | None = None) -> Dataset:
    """A classification Dataset of the images in `folder` (class = sub-folder name).

    With `shape` the pixels are read now; without it they are read when the trainer
    knows the Input's shape (`fit_to_input`).
    """
    found = scan_image_folder(folder)
    samples = found.samples()
    labels = np.array([k for _, k in samples], dtype=np.float64).reshape(-1, 1)
    data = Dataset(
        name=found.root.name or str(folder), x=np.zeros((len(samples), 0)), y=labels,
        task="classification", num_classes=len(found.classes), feature_names=[],
        target_names=["class"], class_names=list(found.classes),
        preprocessing={"source": "images", "folder": str(folder), "task": "classification",
                       "class_names": list(found.classes), "scale": SCALE},
        load_inputs=lambda rows, shp: read_images(found, rows, shp),
    )
    if shape is not None:
        from engine.data.dataset import fit_to_input

        fit_to_input(data, shape)
    return data
