"""A folder of photos: unposed views with an EXIF focal prior or a default field of view."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from fields.errors import FieldsError
from fields.images import (
    IMAGE_SUFFIXES,
    UnreadableImage,
    check_decodes,
    exif_focal_px,
    image_size,
)
from fields.scene import Camera, Scene, View

# COLMAP's default: focal = 1.2 x the longer side (about 45 degrees across it)
DEFAULT_FOCAL_FACTOR = 1.2
NAMED_SKIPS = 10  # skipped images named in a warning each, up to this many; any more in one line


def list_images(folder: Path) -> list[Path]:
    """Readable images in a folder, sorted. Each unreadable, truncated or oversized image is skipped with
    a warning naming it and saying why, other files with one warning naming them; when no image is
    readable, one FieldsError line says what was there instead."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FieldsError(f"{folder}: no such folder")
    images: list[Path] = []
    unreadable: list[UnreadableImage] = []
    others: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            others.append(p.name)
            continue
        try:
            image_size(p)
            check_decodes(p)
        except UnreadableImage as exc:
            unreadable.append(exc)
            continue
        images.append(p)
    if not images:
        found = "no readable images" if unreadable else "no images found"
        raise FieldsError(f"{folder}: {found}" + "".join(_skipped(unreadable, others)))
    warn_skipped(unreadable)
    if others:
        files = "file" if len(others) == 1 else "files"
        warnings.warn(f"{folder}: skipped {len(others)} non-image {files}: {_first(others, 5)}", stacklevel=2)
    return images


def warn_skipped(skipped: list[UnreadableImage], stacklevel: int = 3) -> None:
    """Warn of images a reader skipped: one warning each, naming the file and why, for the first
    NAMED_SKIPS, then one line naming the rest."""
    for exc in skipped[:NAMED_SKIPS]:
        warnings.warn(f"{exc}; skipped it", stacklevel=stacklevel)
    rest = [e.path.name for e in skipped[NAMED_SKIPS:]]
    if rest:
        warnings.warn(f"skipped {len(rest)} more unreadable images: {_first(rest, 5)}", stacklevel=stacklevel)


def _skipped(unreadable: list[UnreadableImage], others: list[str]) -> list[str]:
    """What a folder without a readable image holds, as parts of one line."""
    parts = []
    if unreadable:
        parts.append(f"; {len(unreadable)} unreadable: " + _first([f"{e.path.name} ({e.reason})" for e in unreadable], 3))
    if others:
        parts.append(f"; non-image files: {_first(others, 3)}")
    return parts


def _first(items: list[str], n: int) -> str:
    """The first n items joined, with an ellipsis when there are more."""
    return ", ".join(items[:n]) + (" ..." if len(items) > n else "")


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
