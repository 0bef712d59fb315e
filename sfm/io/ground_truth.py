"""Readers for ground-truth camera files of public benchmarks: Middlebury, Strecha, LLFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fields.errors import FieldsError
from fields.images import image_size
from fields.scene import Camera, Scene, View


def read_middlebury(par_file: Path) -> Scene:
    """Middlebury `*_par.txt`: `name k11..k33 r11..r33 t1 t2 t3` per line, P = K[R|t] (OpenCV)."""
    par_file = Path(par_file)
    try:
        lines = par_file.read_text().split("\n")
        count = int(lines[0].strip())
        rows = [ln.split() for ln in lines[1 : 1 + count]]
        cameras, views = [], []
        for row in rows:
            vals = np.array(row[1:22], float)
            img = par_file.parent / row[0]
            w, h = image_size(img)
            cameras.append(Camera(vals[:9].reshape(3, 3), w, h))
            views.append(View(row[0], img, len(cameras) - 1, vals[9:18].reshape(3, 3), vals[18:21]))
    except (OSError, ValueError, IndexError) as exc:
        raise FieldsError(f"cannot read Middlebury file {par_file}: {exc}") from None
    return Scene(cameras, views)


def read_strecha(folder: Path) -> Scene:
    """Strecha `gt_dense_cameras/*.camera`: K, a zero row, camera-to-world R, centre C, size."""
    folder = Path(folder)
    files = sorted((folder / "gt_dense_cameras").glob("*.camera"))
    if not files:
        raise FieldsError(f"{folder}: no gt_dense_cameras/*.camera files")
    cameras, views = [], []
    for f in files:
        try:
            vals = np.array(f.read_text().split(), float)
            K, R_c2w, C = vals[:9].reshape(3, 3), vals[12:21].reshape(3, 3), vals[21:24]
            w, h = int(vals[24]), int(vals[25])
        except (OSError, ValueError) as exc:
            raise FieldsError(f"cannot read Strecha camera {f}: {exc}") from None
        name = f.name[: -len(".camera")]
        R = R_c2w.T
        cameras.append(Camera(K, w, h))
        views.append(View(name, folder / "images" / name, len(cameras) - 1, R, -R @ C))
    return Scene(cameras, views)


def read_llff(folder: Path, images: str = "images_8") -> Scene:
    """LLFF `poses_bounds.npy`: per image [R|t|hwf] in (down, right, back) axes at full size."""
    folder = Path(folder)
    try:
        arr = np.load(folder / "poses_bounds.npy")
        poses = arr[:, :15].reshape(-1, 3, 5)
    except (OSError, ValueError) as exc:
        raise FieldsError(f"cannot read {folder / 'poses_bounds.npy'}: {exc}") from None
    files = sorted(p for p in (folder / images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(files) != len(poses):
        raise FieldsError(f"{folder}: {len(poses)} poses but {len(files)} images in {images}/")
    w, h = image_size(files[0])
    H, W, f = poses[0, :, 4]
    cam = Camera.from_focal(w, h, f * w / W, f * h / H)
    views = []
    for p, img in zip(poses, files):
        down, right, back = p[:, 0], p[:, 1], p[:, 2]
        c2w = np.stack([right, down, -back], axis=1)  # OpenCV camera axes in the world
        R = c2w.T
        views.append(View(img.name, img, 0, R, -R @ p[:, 3]))
    return Scene([cam], views)
