"""Image loading at the file edge: EXIF orientation applied, any bit depth to float [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fields.errors import FieldsError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


def is_image_file(path: Path) -> bool:
    """Whether a path looks like an image we can read (by suffix)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, reading only the header."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, ValueError) as exc:
        raise FieldsError(f"cannot read image {path}: {exc}") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _to_float(im: Image.Image) -> np.ndarray:
    """PIL image of any common mode to float32 HxWxC (C = 3 or 4) in [0, 1]."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32)
        arr = arr / (65535.0 if arr.max() > 255 else 255.0)
        return np.repeat(arr[..., None], 3, axis=2)
    if im.mode == "F":
        arr = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(im, dtype=np.float32) / 255.0


def load_image(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Float32 HxWxC image (RGB, or RGBA when the file has alpha), resized to (w, h) if given."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            arr = _to_float(im)
    except (OSError, ValueError) as exc:
        raise FieldsError(f"cannot read image {path}: {exc}") from None
    if size is not None and (arr.shape[1], arr.shape[0]) != tuple(size):
        arr = resize(arr, size)
    return arr


def resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-filtered resize of a float image to (w, h), channel by channel."""
    chans = [
        np.asarray(Image.fromarray(arr[..., c]).resize(size, Image.Resampling.BOX if _shrinks(arr, size) else Image.Resampling.BILINEAR))
        for c in range(arr.shape[2])
    ]
    return np.stack(chans, axis=-1).astype(np.float32)


def _shrinks(arr: np.ndarray, size: tuple[int, int]) -> bool:
    return size[0] < arr.shape[1]


def composite(arr: np.ndarray, background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """RGB over a fixed background colour (a no-op for RGB images)."""
    if arr.shape[2] == 3:
        return arr
    alpha = arr[..., 3:4]
    return arr[..., :3] * alpha + np.asarray(background, np.float32) * (1.0 - alpha)


def exif_focal_px(path: Path) -> float | None:
    """Focal length in pixels from EXIF (35 mm equivalent, or focal + sensor resolution); None if absent."""
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            w, h = image_size(path)
    except OSError:
        return None
    sub = exif.get_ifd(0x8769)
    f35 = sub.get(0xA405) or exif.get(0xA405)
    if f35:
        return float(f35) / 36.0 * max(w, h)
    focal = sub.get(0x920A) or exif.get(0x920A)
    xres = sub.get(0xA20E)
    unit = sub.get(0xA210, 2)
    if focal and xres:
        mm_per_unit = {2: 25.4, 3: 10.0, 4: 1.0}.get(int(unit), 25.4)
        return float(focal) * float(xres) / mm_per_unit
    return None
