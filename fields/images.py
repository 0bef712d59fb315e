"""Image loading at the file edge: EXIF orientation applied, any bit depth to float [0, 1].

Every read goes through open_image, which checks the size the file's header claims against our own
pixel limit before a pixel is decoded, and turns whatever Pillow raises on a bad file into one
FieldsError line naming the file, so a caller can skip that file and go on with the rest.
"""

from __future__ import annotations

import contextlib
import re
import struct
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fields.errors import FieldsError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")

# The most pixels an image may claim, checked from the header before anything is decoded. Photos are
# 12-50 megapixels (phones, most cameras), up to about 100 (high-resolution bodies) or 150 (medium
# format); the 200-megapixel mode of some phones (16320 x 12240) just fits. A header claiming more is
# a decompression bomb or a corrupt file, whose decoding could take gigabytes and minutes (pixel-shift
# composites of 240-400 megapixels would need this raised).
MAX_MEGAPIXELS = 200
MAX_PIXELS = MAX_MEGAPIXELS * 1_000_000
# Pillow's own guard (a warning above its limit, DecompressionBombError above twice it) set to ours, so
# every Image.open in the process agrees with us: a photo we accept never trips it.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# What Pillow raises on a malformed, truncated or hostile file (its plugins are not uniform: a
# broken PNG is a SyntaxError, a short header a struct.error or EOFError, a huge one a MemoryError).
_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, TypeError,
                ZeroDivisionError, OverflowError, MemoryError)


class UnreadableImage(FieldsError):
    """An image file that cannot be read: unreadable, truncated, corrupt, or claiming too many pixels."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read image {path}: {reason}")
        self.path, self.reason = Path(path), reason


def is_image_file(path: Path) -> bool:
    """Whether a path looks like an image we can read (by suffix)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def check_pixels(path: Path, size: tuple[int, int]) -> None:
    """Refuse an image whose header claims no pixels or more than MAX_PIXELS."""
    w, h = size
    if w < 1 or h < 1:
        raise UnreadableImage(path, f"it claims {w} x {h} pixels, none")
    if w * h > MAX_PIXELS:
        raise UnreadableImage(path, f"it claims {w} x {h} pixels, over the {MAX_MEGAPIXELS}-megapixel limit")


def _reason(exc: BaseException) -> str:
    """Why Pillow could not read a file, in a few words on one line (its messages may repeat the path,
    span lines or be empty)."""
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image Pillow can read"
    if isinstance(exc, Image.DecompressionBombError):
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        amount = f"{int(claimed[1]) / 1e6:,.0f} megapixels" if claimed else f"over {2 * MAX_MEGAPIXELS} megapixels"
        return f"it claims {amount}, over the {MAX_MEGAPIXELS}-megapixel limit"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode it"
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError):
        return text or "OSError"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """The image with only its header read and its claimed size checked (check_pixels), for the block
    to read from; any failure in the block, decoding included, becomes one UnreadableImage (a
    FieldsError: one line) naming the file."""
    try:
        if Path(path).stat().st_size == 0:
            raise UnreadableImage(path, "the file is empty")
        with warnings.catch_warnings():
            # Pillow warns above MAX_PIXELS; check_pixels refuses those with their size instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_pixels(path, im.size)
            yield im
    except (Image.DecompressionBombError, *_READ_ERRORS) as exc:
        raise UnreadableImage(path, _reason(exc)) from None


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) of an open image after its EXIF orientation."""
    w, h = im.size
    return (h, w) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, from the header (a PNG within the limit is decoded too:
    Pillow finds EXIF that follows a PNG's pixels only by reading them)."""
    with open_image(path) as im:
        return _oriented_size(im)


def check_decodes(path: Path) -> None:
    """Decode the whole file (JPEGs at 1/8 scale, which is fast) so a truncated or corrupt image is
    found before a run starts, not halfway through training."""
    with open_image(path) as im:
        im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
        im.load()


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
    with open_image(path) as im:
        arr = _to_float(ImageOps.exif_transpose(im))
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
    """Focal length in pixels from EXIF (35 mm equivalent, or focal + sensor resolution); None if absent
    or malformed. An unreadable or oversized file is a FieldsError, as for image_size."""
    with open_image(path) as im:
        w, h = _oriented_size(im)
        try:
            f = _focal_from_exif(im.getexif(), max(w, h))
        except _READ_ERRORS:  # a malformed tag is no focal length, not an unreadable photo
            return None
    return f if f is not None and np.isfinite(f) and f > 0 else None


def _focal_from_exif(exif: Image.Exif, longer_side: int) -> float | None:
    """Focal length in pixels from the EXIF tags, None without the tags it needs."""
    sub = exif.get_ifd(0x8769)
    f35 = sub.get(0xA405) or exif.get(0xA405)
    if f35:
        return float(f35) / 36.0 * longer_side
    focal = sub.get(0x920A) or exif.get(0x920A)
    xres = sub.get(0xA20E)
    unit = sub.get(0xA210, 2)
    if focal and xres:
        mm_per_unit = {2: 25.4, 3: 10.0, 4: 1.0}.get(int(unit), 25.4)
        return float(focal) * float(xres) / mm_per_unit
    return None
