"""COLMAP sparse models (binary or text) read and written through pycolmap."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fields.errors import FieldsError
from fields.images import UnreadableImage, image_size
from fields.scene import Camera, Points, Scene, View
from sfm.io.image_folder import warn_skipped

if TYPE_CHECKING:  # pycolmap is imported where used: reading transforms.json or training needs none of it
    import pycolmap

# COLMAP models whose parameters map onto pinhole K + (k1, k2, p1, p2)
_MODELS = {
    "SIMPLE_PINHOLE": lambda p: (p[0], p[0], p[1], p[2], []),
    "PINHOLE": lambda p: (p[0], p[1], p[2], p[3], []),
    "SIMPLE_RADIAL": lambda p: (p[0], p[0], p[1], p[2], [p[3]]),
    "RADIAL": lambda p: (p[0], p[0], p[1], p[2], [p[3], p[4]]),
    "OPENCV": lambda p: (p[0], p[1], p[2], p[3], list(p[4:8])),
}


def camera_from_colmap(cam: pycolmap.Camera) -> Camera:
    """Our Camera from a pycolmap camera of a pinhole-family model."""
    name = cam.model.name
    if name not in _MODELS:
        raise FieldsError(f"COLMAP camera model {name} is not supported (use PINHOLE, SIMPLE_RADIAL, RADIAL or OPENCV)")
    fx, fy, cx, cy, d = _MODELS[name](list(cam.params))
    out = Camera.from_focal(cam.width, cam.height, fx, fy, cx, cy)
    out.dist[: len(d)] = d
    return out


def camera_to_colmap(cam: Camera, camera_id: int) -> pycolmap.Camera:
    """PINHOLE when there is no distortion, else OPENCV."""
    import pycolmap

    K = cam.K
    if cam.has_distortion():
        model, params = "OPENCV", [K[0, 0], K[1, 1], K[0, 2], K[1, 2], *cam.dist.tolist()]
    else:
        model, params = "PINHOLE", [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]
    return pycolmap.Camera(model=model, width=cam.width, height=cam.height, params=params, camera_id=camera_id)


def largest_model(folder: Path) -> Path:
    """The sub-model with the most registered images under a sparse/ folder (or the folder itself)."""
    folder = Path(folder)
    if _is_model(folder):
        return folder
    subs = [d for d in sorted(folder.iterdir()) if d.is_dir() and _is_model(d)] if folder.is_dir() else []
    if not subs:
        raise FieldsError(f"{folder}: no COLMAP model (cameras, images, points3D .bin or .txt)")
    return max(subs, key=_registered_count)


def _registered_count(model: Path) -> int:
    """Registered images of a sub-model; -1 when it does not read."""
    import pycolmap

    try:
        check_binary_model(model)
        return pycolmap.Reconstruction(model).num_reg_images()
    except Exception:  # a FieldsError from the check, bare RuntimeError/ValueError from pycolmap
        return -1


def _is_model(d: Path) -> bool:
    return all((d / f"{n}.bin").is_file() for n in ("cameras", "images", "points3D")) or all(
        (d / f"{n}.txt").is_file() for n in ("cameras", "images", "points3D"))


# parameters per COLMAP camera model id (colmap/sensor/models.h)
_CAMERA_PARAMS = {0: 3, 1: 4, 2: 4, 3: 5, 4: 8, 5: 8, 6: 12, 7: 5, 8: 4, 9: 5, 10: 12, 11: 16}


class _Reader:
    """Bounds-checked little-endian reads over a byte string."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("ends early")
        self.pos += n

    def uint(self, n: int) -> int:
        start = self.pos
        self.skip(n)
        return int.from_bytes(self.data[start : self.pos], "little")

    def name(self) -> None:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ValueError("unterminated image name")
        self.pos = end + 1


def _scan_binary(name: str, data: bytes) -> None:
    """Walk one binary file's records, checking every count against the bytes left."""
    r = _Reader(data)
    for _ in range(r.uint(8)):
        if name == "cameras":
            r.skip(4)
            model_id = r.uint(4)
            if model_id not in _CAMERA_PARAMS:
                raise ValueError(f"unknown camera model id {model_id}")
            r.skip(16 + 8 * _CAMERA_PARAMS[model_id])
        elif name == "images":
            r.skip(4 + 32 + 24 + 4)
            r.name()
            r.skip(24 * r.uint(8))
        else:
            r.skip(8 + 24 + 3 + 8)
            r.skip(8 * r.uint(8))


def check_binary_model(model: Path) -> None:
    """Refuse binary files whose counts run past their end: pycolmap would read on past the end of
    the file (garbage, and minutes or hours for a corrupt count) instead of failing."""
    for name in ("cameras", "images", "points3D"):
        path = model / f"{name}.bin"
        if path.is_file():
            try:
                _scan_binary(name, path.read_bytes())
            except ValueError as exc:
                raise FieldsError(f"cannot read COLMAP model {model}: {path.name} is truncated or corrupt ({exc})") from None


def read_colmap(folder: Path, image_dir: Path | None = None) -> Scene:
    """A Scene from a COLMAP model (the largest sub-model of a sparse/ folder); posed views whose image
    in image_dir is unreadable or oversized lose their pose (unpose_unreadable)."""
    import pycolmap

    model = largest_model(folder)
    check_binary_model(model)
    try:
        rec = pycolmap.Reconstruction(model)
        scene = scene_from_reconstruction(rec, image_dir)
    except Exception as exc:  # pycolmap raises bare RuntimeError/ValueError on malformed files, names undecodable
        raise FieldsError(f"cannot read COLMAP model {model}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    unpose_unreadable(scene)
    return scene


def unpose_unreadable(scene: Scene) -> None:
    """Posed views whose image file is there but unreadable, broken at the header or oversized lose their
    pose, so training and evaluation leave them out, with a warning naming each (headers only: cheap).
    Views without an image file keep theirs: comparing poses needs no image."""
    skipped = []
    for v in scene.views:
        if v.registered and v.path is not None and v.path.is_file():
            try:
                image_size(v.path)
            except UnreadableImage as exc:
                skipped.append(exc)
                v.R = v.t = None
    warn_skipped(skipped)


def scene_from_reconstruction(rec: pycolmap.Reconstruction, image_dir: Path | None) -> Scene:
    """Every image of the reconstruction becomes a View (unregistered ones without a pose)."""
    cam_index: dict[int, int] = {}
    cameras = []
    for cid in sorted(rec.cameras):
        cam_index[cid] = len(cameras)
        cameras.append(camera_from_colmap(rec.cameras[cid]))
    views = []
    view_of_image: dict[int, int] = {}
    for iid in sorted(rec.images, key=lambda i: rec.images[i].name):
        im = rec.images[iid]
        path = (Path(image_dir) / im.name) if image_dir is not None else None
        v = View(im.name, path, cam_index[im.camera_id])
        if im.has_pose:
            pose = im.cam_from_world()
            v.R, v.t = np.asarray(pose.rotation.matrix(), float), np.asarray(pose.translation, float)
            if not (np.all(np.isfinite(v.R)) and np.all(np.isfinite(v.t))):
                raise ValueError(f"image {im.name!r} has a pose that is not finite")
        v.keypoints = np.array([p.xy for p in im.points2D], float).reshape(-1, 2)
        view_of_image[iid] = len(views)
        views.append(v)
    ids = sorted(rec.points3D)
    xyz = np.array([rec.points3D[i].xyz for i in ids], float).reshape(-1, 3)
    rgb = np.array([rec.points3D[i].color for i in ids], np.uint8).reshape(-1, 3)
    tracks = [np.array([[view_of_image[e.image_id], e.point2D_idx] for e in rec.points3D[i].track.elements], np.int64).reshape(-1, 2)
              for i in ids]
    return Scene(cameras, views, Points(xyz, rgb, tracks))


def nearest_rotation(M: np.ndarray) -> np.ndarray:
    """The rotation closest to M (float32 sources such as NeRF-synthetic are not exactly orthonormal)."""
    U, _, Vt = np.linalg.svd(M)
    return U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt


def scene_to_reconstruction(scene: Scene) -> tuple[pycolmap.Reconstruction, dict[int, int]]:
    """A pycolmap Reconstruction of the registered views, cameras and tracked points, and the image id
    of each registered view index."""
    import pycolmap

    rec = pycolmap.Reconstruction()
    for ci, cam in enumerate(scene.cameras):
        rec.add_camera_with_trivial_rig(camera_to_colmap(cam, ci + 1))
    image_id = {}
    for vi, v in enumerate(scene.views):
        if not v.registered:
            continue
        image_id[vi] = len(image_id) + 1
        kp = v.keypoints if v.keypoints is not None else np.zeros((0, 2))
        im = pycolmap.Image(name=v.name, keypoints=np.asarray(kp, float).reshape(-1, 2),
                            camera_id=v.camera + 1, image_id=image_id[vi])
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(nearest_rotation(v.R)), v.t)
        rec.add_image_with_trivial_frame(im, pose)
    for k in range(len(scene.points)):
        track = pycolmap.Track()
        if scene.points.tracks:
            for vi, kpi in scene.points.tracks[k]:
                if int(vi) in image_id:
                    track.add_element(image_id[int(vi)], int(kpi))
        rec.add_point3D(scene.points.xyz[k], track, scene.points.rgb[k])
    return rec, image_id


def write_colmap(scene: Scene, folder: Path, text: bool = False) -> None:
    """Write the registered views, cameras and tracked points as a COLMAP model."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rec, _ = scene_to_reconstruction(scene)
    if text:
        rec.write_text(folder)
    else:
        rec.write(folder)
