"""A folder of photos: unposed views with an EXIF focal prior or a default field of view."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from fields.errors import FieldsError
from fields.images import IMAGE_SUFFIXES, exif_focal_px, image_size
from fields.scene import Camera, Scene, View

# COLMAP's default: focal = 1.2 x the longer side (about 45 degrees across it)
DEFAULT_FOCAL_FACTOR = 1.2


def check_decodes(path: Path) -> None:
    """Decode the whole file (JPEGs at 1/8 scale, which is fast) so a truncated or corrupt image is
    found here, before a run starts, not halfway through training."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
            im.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise FieldsError(f"cannot read image {path}: {exc}") from None


def list_images(folder: Path) -> list[Path]:
    """Readable images in a folder, sorted; other files and unreadable images are skipped with a warning."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FieldsError(f"{folder}: no such folder")
    images, skipped = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(p.name)
            continue
        try:
            image_size(p)
            check_decodes(p)
        except FieldsError:
            skipped.append(p.name)
            continue
        images.append(p)
    if skipped:
        warnings.warn(f"{folder}: skipped {len(skipped)} non-image or unreadable files: {', '.join(skipped[:5])}"
                      + (" ..." if len(skipped) > 5 else ""), stacklevel=2)
    if not images:
        raise FieldsError(f"{folder}: no images found")
    return images


def read_image_folder(folder: Path, fov_deg: float = 0.0) -> Scene:
    """Unregistered views; views of one size share one camera. The focal length is EXIF's; for photos
    without one, fov_deg across the longer side when given (then a known focal length), else COLMAP's
    default guess, which SfM estimates instead of trusting."""
    if not 0.0 <= fov_deg < 180.0:
        raise FieldsError(f"the field of view must be between 0 and 180 degrees, not {fov_deg}")
    factor = 0.5 / np.tan(np.radians(0.5 * fov_deg)) if fov_deg > 0 else DEFAULT_FOCAL_FACTOR
    cameras: list[Camera] = []
    by_key: dict[tuple, int] = {}
    views = []
    for p in list_images(folder):
        w, h = image_size(p)
        f = exif_focal_px(p)
        exif = f is not None and f > 0
        f = f if exif else factor * max(w, h)
        known = exif or fov_deg > 0
        key = (w, h, round(f, 3), known)
        if key not in by_key:
            by_key[key] = len(cameras)
            cameras.append(replace(Camera.from_focal(w, h, f, f), focal_known=known))
        views.append(View(p.name, p.resolve(), by_key[key]))
    return Scene(cameras, views)
