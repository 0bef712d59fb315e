"""A folder of photos: unposed views with an EXIF focal prior or a default field of view."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

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


def read_image_folder(folder: Path, focal_factor: float = DEFAULT_FOCAL_FACTOR) -> Scene:
    """Unregistered views; views of one size share one camera (EXIF focal when present)."""
    cameras: list[Camera] = []
    by_key: dict[tuple, int] = {}
    views = []
    for p in list_images(folder):
        w, h = image_size(p)
        f = exif_focal_px(p)
        known = f is not None and f > 0
        f = f if known else focal_factor * max(w, h)
        key = (w, h, round(f, 3), known)
        if key not in by_key:
            by_key[key] = len(cameras)
            cameras.append(replace(Camera.from_focal(w, h, f, f), focal_known=known))
        views.append(View(p.name, p.resolve(), by_key[key]))
    return Scene(cameras, views)
