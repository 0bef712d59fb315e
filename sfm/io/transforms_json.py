"""nerfstudio / instant-ngp / NeRF-synthetic `transforms.json`: OpenGL camera-to-world at the file edge."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from fields.errors import FieldsError
from fields.images import UnreadableImage, image_size
from fields.io_utils import write_json
from fields.scene import Camera, Points, Scene, View
from sfm.io.image_folder import warn_skipped

GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # flips camera Y and Z: right-multiplies a camera-to-world


def c2w_gl_to_w2c_cv(c2w_gl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenGL camera-to-world (4x4 or 3x4) to OpenCV world-to-camera (R, t)."""
    M = np.eye(4)
    M[:3, :] = np.asarray(c2w_gl, float)[:3, :]
    c2w_cv = M @ GL_FROM_CV
    R = c2w_cv[:3, :3].T
    return R, -R @ c2w_cv[:3, 3]


def w2c_cv_to_c2w_gl(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """OpenCV world-to-camera (R, t) to a 4x4 OpenGL camera-to-world."""
    c2w = np.eye(4)
    c2w[:3, :3] = R.T
    c2w[:3, 3] = -R.T @ t
    return c2w @ GL_FROM_CV


def _resolve_image(base: Path, file_path: str) -> Path | None:
    """The frame's image file; NeRF-synthetic paths omit the extension."""
    p = (base / file_path).resolve()
    if p.is_file():
        return p
    for ext in (".png", ".jpg", ".jpeg", ".PNG", ".JPG"):
        q = p.with_name(p.name + ext)
        if q.is_file():
            return q
    return None


def _outside(base: Path, file_path: str) -> bool:
    """Whether a frame's path, as written (absolute, or climbing out with ..), leaves the dataset folder.
    Judged on the text, so links inside the folder to images elsewhere do not count."""
    root = os.path.abspath(base)
    return os.path.commonpath([root, os.path.abspath(os.path.join(root, file_path))]) != root


def _camera_from(meta: dict, frame: dict, size: tuple[int, int]) -> Camera:
    """Intrinsics from frame-level keys, falling back to file-level keys and the image's (w, h)."""
    def get(key: str):
        return frame.get(key, meta.get(key))

    w, h = get("w"), get("h")
    if w is None or h is None:
        w, h = size
    w, h = int(w), int(h)
    if get("fl_x") is not None:
        fx = float(get("fl_x"))
        fy = float(get("fl_y") if get("fl_y") is not None else fx)
    elif get("camera_angle_x") is not None:
        fx = 0.5 * w / np.tan(0.5 * float(get("camera_angle_x")))
        fy = 0.5 * h / np.tan(0.5 * float(get("camera_angle_y"))) if get("camera_angle_y") is not None else fx
    else:
        raise FieldsError("transforms.json gives no focal length (fl_x or camera_angle_x)")
    cx = float(get("cx")) if get("cx") is not None else w / 2.0
    cy = float(get("cy")) if get("cy") is not None else h / 2.0
    if not (w > 0 and h > 0 and fx > 0 and fy > 0 and np.isfinite([fx, fy, cx, cy]).all()):
        raise ValueError(f"bad intrinsics: w {w}, h {h}, fl_x {fx}, fl_y {fy}, cx {cx}, cy {cy}")
    cam = Camera.from_focal(w, h, fx, fy, cx, cy)
    cam.dist = np.array([float(get(k) or 0.0) for k in ("k1", "k2", "p1", "p2")])
    return cam


def read_transforms(path: Path, split: str = "train", root: Path | None = None) -> Scene:
    """A Scene from one transforms.json. Frames whose image is missing, or whose image or mask is not an
    image, has a broken header or claims too many pixels, are skipped with a warning: every header is
    read here, once, so training does not meet such a file. Images read from outside the file's folder
    (absolute paths, or paths climbing out with ..) are accepted and named in one warning.

    View names are image paths relative to `root` (default: the images' common folder, as COLMAP names them).
    """
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise TypeError("the file is not a JSON object")
        frames = meta["frames"]
        if not isinstance(frames, list):
            raise TypeError("'frames' is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FieldsError(f"cannot read {path}: {exc}") from None
    cameras: list[Camera] = []
    views: list[View] = []
    missing = 0
    unreadable: list[UnreadableImage] = []
    outside: list[Path] = []
    for frame in frames:
        try:
            file_path = str(frame["file_path"])
            img = _resolve_image(path.parent, file_path)
            if img is None:
                missing += 1
                continue
            mask_path = str(frame["mask_path"]) if frame.get("mask_path") else None
            mask = _resolve_image(path.parent, mask_path) if mask_path else None
            outside += [p for p, f in ((img, file_path), (mask, mask_path)) if p and _outside(path.parent, f)]
            try:
                size = image_size(img)
                if mask is not None:
                    image_size(mask)
            except UnreadableImage as exc:
                unreadable.append(exc)
                continue
            cam = _camera_from(meta, frame, size)
            R, t = c2w_gl_to_w2c_cv(np.array(frame["transform_matrix"], float))
            if not (np.isfinite(R).all() and np.isfinite(t).all()):
                raise ValueError("transform_matrix is not finite")
        except (KeyError, ValueError, TypeError, IndexError, OverflowError, AttributeError, OSError) as exc:
            raise FieldsError(f"malformed frame in {path}: {exc!r}") from None
        views.append(View(img.name, img, _shared_index(cameras, cam), R, t, split=split, mask=mask))
    _report_skips(path, len(frames), missing, unreadable, outside, bool(views))
    root = Path(root).resolve() if root is not None else Path(os.path.commonpath([v.path.parent for v in views]))
    for v in views:
        v.name = os.path.relpath(v.path, root)
    return Scene(cameras, views, _read_ply_points(meta, path.parent))


def _report_skips(path: Path, total: int, missing: int, unreadable: list[UnreadableImage], outside: list[Path],
                  any_view: bool) -> None:
    """Warn of the frames reading a transforms.json skipped and of the images it read from outside its
    folder; when no view is left, one FieldsError line instead."""
    if not any_view:
        why = f"; {len(unreadable)} unreadable: {unreadable[0].path.name} ({unreadable[0].reason})" if unreadable else ""
        raise FieldsError(f"{path}: no frame has a readable image file ({missing} of {total} missing{why}"
                          + (" ...)" if len(unreadable) > 1 else ")"))
    if outside:
        names = ", ".join(str(p) for p in outside[:5]) + (" ..." if len(outside) > 5 else "")
        warnings.warn(f"{path}: read {len(outside)} files from outside {path.parent.resolve()}: {names}", stacklevel=3)
    if missing:
        warnings.warn(f"{path}: skipped {missing} of {total} frames whose image files are missing", stacklevel=3)
    warn_skipped(unreadable, stacklevel=4)


def _shared_index(cameras: list[Camera], cam: Camera) -> int:
    """Index of an identical camera already in the list, appending cam if there is none."""
    for i, c in enumerate(cameras):
        if (c.width, c.height) == (cam.width, cam.height) and np.allclose(c.K, cam.K) and np.allclose(c.dist, cam.dist):
            return i
    cameras.append(cam)
    return len(cameras) - 1


def _read_ply_points(meta: dict, base: Path) -> Points:
    ply = meta.get("ply_file_path")
    if not isinstance(ply, str) or not ply or not (base / ply).is_file():
        return Points()
    import trimesh

    try:
        cloud = trimesh.load(base / ply, process=False)
    except Exception as exc:  # trimesh raises many kinds on a malformed file
        raise FieldsError(f"cannot read the point cloud {base / ply}: {exc}") from None
    rgb = np.asarray(cloud.colors)[:, :3].astype(np.uint8) if len(getattr(cloud, "colors", [])) else np.full((len(cloud.vertices), 3), 128, np.uint8)
    return Points(np.asarray(cloud.vertices, float), rgb)


def read_nerf_synthetic(folder: Path) -> Scene:
    """NeRF-synthetic transforms_{train,val,test}.json merged into one Scene with view splits."""
    scenes = [read_transforms(folder / f"transforms_{s}.json", split=s, root=folder) for s in ("train", "val", "test")
              if (folder / f"transforms_{s}.json").is_file()]
    if not scenes:
        raise FieldsError(f"{folder}: no transforms_train.json")
    merged = scenes[0]
    for other in scenes[1:]:
        for v in other.views:
            v.camera = _shared_index(merged.cameras, other.cameras[v.camera])
            merged.views.append(v)
    return merged


def write_transforms(scene: Scene, path: Path, ply_name: str | None = None) -> None:
    """nerfstudio-style transforms.json (OpenGL camera-to-world, OPENCV model, paths relative to the file)."""
    path = Path(path)
    frames = []
    for v in scene.views:
        if not v.registered:
            continue
        cam = scene.cameras[v.camera]
        f = _camera_keys(cam)
        f["file_path"] = os.path.relpath(v.path.resolve(), path.parent.resolve()) if v.path else v.name
        f["transform_matrix"] = w2c_cv_to_c2w_gl(v.R, v.t).tolist()
        if v.mask is not None:
            f["mask_path"] = os.path.relpath(v.mask.resolve(), path.parent.resolve())
        frames.append(f)
    meta: dict = {"camera_model": "OPENCV"}
    if len(scene.cameras) == 1:
        meta.update(_camera_keys(scene.cameras[0]))
        for f in frames:
            for k in list(f):
                if k not in ("file_path", "transform_matrix", "mask_path"):
                    del f[k]
    if ply_name:
        meta["ply_file_path"] = ply_name
    meta["frames"] = frames
    write_json(path, meta, indent=2)


def _camera_keys(cam: Camera) -> dict:
    K = cam.K
    keys = {"fl_x": K[0, 0], "fl_y": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], "w": cam.width, "h": cam.height}
    keys.update(dict(zip(("k1", "k2", "p1", "p2"), cam.dist.tolist())))
    return {k: float(v) if k not in ("w", "h") else int(v) for k, v in keys.items()}
