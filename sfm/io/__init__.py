"""Readers and writers at the edges of the world; `load_scene` recognises any supported input."""

from __future__ import annotations

from pathlib import Path

from fields.errors import FieldsError
from fields.scene import Scene
from sfm.io.colmap_model import read_colmap, write_colmap
from sfm.io.ground_truth import read_llff, read_middlebury, read_strecha
from sfm.io.image_folder import read_image_folder
from sfm.io.transforms_json import (
    read_nerf_synthetic,
    read_transforms,
    write_transforms,
)

__all__ = ["load_scene", "read_colmap", "write_colmap", "read_transforms", "write_transforms",
           "read_nerf_synthetic", "read_middlebury", "read_strecha", "read_llff", "read_image_folder"]


def load_scene(path: Path, one_split: bool = False, images: Path | None = None) -> Scene:
    """A Scene from a run folder, transforms.json, NeRF-synthetic folder, COLMAP model,
    Middlebury par file, Strecha folder, LLFF folder or a plain folder of images. A NeRF-synthetic
    transforms_<split>.json reads the whole dataset (all splits, for training), or only that split
    when one_split (a reference for pose errors: the splits' file names repeat). images: where a run
    folder's photos are now, when they moved (see Scene.load)."""
    path = Path(path)
    if not path.exists():
        raise FieldsError(f"{path}: no such file or folder")
    if path.is_file():
        if path.name.endswith("_par.txt"):
            return read_middlebury(path)
        if path.name.startswith("transforms_") and path.suffix == ".json":
            if one_split:
                return read_transforms(path, split=path.stem[len("transforms_"):])
            return read_nerf_synthetic(path.parent)
        if path.suffix == ".json":
            return read_transforms(path)
        raise FieldsError(f"{path}: not a recognised scene file (transforms.json or *_par.txt)")
    if (path / "scene.json").is_file():
        return Scene.load(path, images)
    if (path / "transforms_train.json").is_file():
        return read_nerf_synthetic(path)
    if (path / "transforms.json").is_file():
        return read_transforms(path / "transforms.json")
    pars = sorted(path.glob("*_par.txt"))
    if pars:
        return read_middlebury(pars[0])
    if (path / "gt_dense_cameras").is_dir():
        return read_strecha(path)
    if (path / "poses_bounds.npy").is_file():
        return read_llff(path)
    for model in (path, path / "sparse", path / "sparse" / "0"):
        if any((model / f).is_file() for f in ("images.bin", "images.txt")) or (model.is_dir() and any(
                (d / "images.bin").is_file() for d in model.iterdir() if d.is_dir())):
            image_dir = path / "images" if (path / "images").is_dir() else path.parent / "images"
            return read_colmap(model, image_dir if image_dir.is_dir() else None)
    return read_image_folder(path)
