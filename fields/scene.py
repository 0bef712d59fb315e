"""The Scene: the one object that travels sfm -> fields -> export.

Cameras are OpenCV world-to-camera (x_cam = R x_world + t, +X right, +Y down, +Z forward) in the
user's input frame; `to_normalised` is the similarity into the frame the fields live in (the
object inside the unit sphere).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fields.errors import FieldsError
from fields.image_locations import (
    Fingerprint,
    Located,
    common_root,
    locate,
    root_record,
)
from fields.images import load_image
from fields.io_utils import atomic_write, write_json


@dataclass
class Camera:
    """Pinhole intrinsics with optional OpenCV distortion (k1, k2, p1, p2); pixel centres at +0.5."""

    K: np.ndarray
    width: int
    height: int
    dist: np.ndarray = field(default_factory=lambda: np.zeros(4))
    # False when the focal length is a default guess (photos without EXIF): SfM then estimates it
    # instead of taking it as a prior. Not saved: it matters only to the SfM that reads the photos.
    focal_known: bool = True

    @staticmethod
    def from_fov(width: int, height: int, fov_x: float) -> "Camera":
        """A centred pinhole camera with the given horizontal field of view (radians)."""
        f = 0.5 * width / np.tan(0.5 * fov_x)
        return Camera.from_focal(width, height, f, f)

    @staticmethod
    def from_focal(width: int, height: int, fx: float, fy: float, cx: float | None = None, cy: float | None = None) -> "Camera":
        cx = width / 2.0 if cx is None else cx
        cy = height / 2.0 if cy is None else cy
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        return Camera(K, int(width), int(height))

    def resized(self, width: int, height: int) -> "Camera":
        """The same camera for the image resized to (width, height)."""
        S = np.diag([width / self.width, height / self.height, 1.0])
        return Camera(S @ self.K, int(width), int(height), self.dist.copy(), self.focal_known)

    def has_distortion(self) -> bool:
        return bool(np.any(self.dist != 0))

    def to_dict(self) -> dict:
        return {"K": self.K.tolist(), "width": self.width, "height": self.height, "dist": self.dist.tolist()}

    @staticmethod
    def from_dict(d: dict) -> "Camera":
        cam = Camera(_finite(d["K"], (3, 3), "K"), int(d["width"]), int(d["height"]), _finite(d["dist"], (4,), "dist"))
        if cam.width < 1 or cam.height < 1 or cam.K[0, 0] <= 0 or cam.K[1, 1] <= 0:
            raise ValueError(f"camera of {cam.width} x {cam.height} px with focal lengths {cam.K[0, 0]}, {cam.K[1, 1]}")
        return cam


@dataclass
class Similarity:
    """x' = scale * R x + t."""

    scale: float = 1.0
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(x) @ self.R.T + self.t

    def inverse(self) -> "Similarity":
        Ri = self.R.T
        return Similarity(1.0 / self.scale, Ri, -(Ri @ self.t) / self.scale)

    def matrix(self) -> np.ndarray:
        M = np.eye(4)
        M[:3, :3] = self.scale * self.R
        M[:3, 3] = self.t
        return M

    def transform_pose(self, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A world-to-camera pose expressed in the mapped frame (camera axes kept, metric scaled)."""
        Rn = R @ self.R.T
        return Rn, self.scale * t - Rn @ self.t

    def to_dict(self) -> dict:
        return {"scale": float(self.scale), "R": self.R.tolist(), "t": self.t.tolist()}

    @staticmethod
    def from_dict(d: dict) -> "Similarity":
        sim = Similarity(float(d["scale"]), _finite(d["R"], (3, 3), "R"), _finite(d["t"], (3,), "t"))
        if not (np.isfinite(sim.scale) and sim.scale > 0):
            raise ValueError(f"similarity scale {sim.scale}")
        return sim


@dataclass
class View:
    """One image: its file, its camera index, and its pose (None until registered)."""

    name: str
    path: Path | None
    camera: int
    R: np.ndarray | None = None
    t: np.ndarray | None = None
    split: str = "train"
    keypoints: np.ndarray | None = None  # (M, 2) observed pixels that tracks refer to
    mask: Path | None = None  # foreground mask image (nonzero = object), as nerfstudio's mask_path
    fingerprint: Fingerprint | None = None  # the image's contents when the scene was first saved

    @property
    def registered(self) -> bool:
        return self.R is not None

    @property
    def center(self) -> np.ndarray:
        """Camera centre in the world: -R^T t."""
        return -self.R.T @ self.t

    def to_dict(self, image_root: Path | None) -> dict:
        """Paths relative to the photos' root, with the image's fingerprint (taken now, on first save)."""
        d = {"name": self.name, "camera": self.camera, "split": self.split,
             "path": None if self.path is None else _relpath(self.path, image_root)}
        if self.path is not None and self.fingerprint is None and Path(self.path).is_file():
            self.fingerprint = Fingerprint.of(Path(self.path))
        if self.fingerprint is not None:
            d["fingerprint"] = self.fingerprint.to_dict()
        if self.mask is not None:
            d["mask"] = _relpath(self.mask, image_root)
        if self.registered:
            d["R"], d["t"] = self.R.tolist(), self.t.tolist()
        return d


@dataclass
class Points:
    """Sparse points: xyz, uint8 colours, and tracks as (view index, keypoint index) rows."""

    xyz: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))
    tracks: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.xyz)


@dataclass
class Scene:
    cameras: list[Camera]
    views: list[View]
    points: Points = field(default_factory=Points)
    to_normalised: Similarity = field(default_factory=Similarity)
    # where the photos were found when loaded from a run folder (None for a scene read from elsewhere)
    located: Located | None = None

    # ----- queries
    def registered(self) -> list[int]:
        return [i for i, v in enumerate(self.views) if v.registered]

    def train_views(self) -> list[int]:
        """Registered views of the train split: what a field is trained on."""
        return [i for i in self.registered() if self.views[i].split == "train"]

    def held_out_views(self) -> list[int]:
        """Registered views of the test split, else of the val split: what a field is evaluated on."""
        for split in ("test", "val"):
            views = [i for i in self.registered() if self.views[i].split == split]
            if views:
                return views
        return []

    def hold_out(self, every: int) -> list[int]:
        """Mark every `every`-th registered view as test when the scene has no test or val split (the
        data's own split wins); the held-out views."""
        if every <= 0 or any(v.split in ("test", "val") for v in self.views):
            return self.held_out_views()
        held = self.registered()[::every]
        for i in held:
            self.views[i].split = "test"
        return held

    def camera_of(self, i: int) -> Camera:
        return self.cameras[self.views[i].camera]

    def view_by_name(self) -> dict[str, int]:
        return {v.name: i for i, v in enumerate(self.views)}

    def image(self, i: int, max_size: int | None = None) -> tuple[np.ndarray, Camera]:
        """The i-th image (float32 HxWxC, EXIF applied) and its camera, shrunk so max(w, h) <= max_size."""
        cam = self.camera_of(i)
        w, h = cam.width, cam.height
        if max_size is not None and max(w, h) > max_size:
            s = max_size / max(w, h)
            w, h = max(1, round(w * s)), max(1, round(h * s))
        if self.views[i].path is None:
            raise FieldsError(f"view {self.views[i].name} has no image file")
        return load_image(self.views[i].path, (w, h)), cam.resized(w, h)

    def mask(self, i: int, img: np.ndarray, cam: Camera) -> np.ndarray | None:
        """The i-th view's foreground mask (float32 HxW in [0, 1]) matching its loaded image (img, cam from
        image()): its mask file, else the image's alpha channel, else None."""
        if self.views[i].mask is not None:
            m = load_image(self.views[i].mask, (cam.width, cam.height))
            return (m[..., 3] if m.shape[2] == 4 else m[..., :3].max(-1)).astype(np.float32)
        return img[..., 3].copy() if img.shape[2] == 4 else None

    def normalised_pose(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """World-to-camera pose of view i in the normalised frame."""
        v = self.views[i]
        return self.to_normalised.transform_pose(v.R, v.t)

    def centers(self, idx: list[int] | None = None) -> np.ndarray:
        idx = self.registered() if idx is None else idx
        return np.array([self.views[i].center for i in idx]).reshape(-1, 3)

    # ----- persistence (scene.json + points.npz inside a folder)
    def image_files(self) -> list[Path]:
        """Every image and mask file the scene refers to."""
        return [Path(p) for v in self.views for p in (v.path, v.mask) if p is not None]

    def save(self, folder: Path) -> None:
        """Write scene.json and points.npz atomically into folder. The photos are recorded where a moved
        or copied run finds them again (fields/image_locations.py)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        root = common_root(self.image_files())
        doc = {
            "cameras": [c.to_dict() for c in self.cameras],
            "views": [v.to_dict(root) for v in self.views],
            "to_normalised": self.to_normalised.to_dict(),
        }
        if root is not None:
            doc["images"] = root_record(root, folder)
        kp = {f"kp{i}": v.keypoints for i, v in enumerate(self.views) if v.keypoints is not None}
        lens = np.array([len(t) for t in self.points.tracks], np.int64)
        flat = np.concatenate(self.points.tracks) if self.points.tracks else np.zeros((0, 2), np.int64)
        atomic_write(folder / "points.npz", lambda tmp: np.savez_compressed(
            tmp, xyz=self.points.xyz, rgb=self.points.rgb, track_len=lens, track_flat=flat, **kp))
        write_json(folder / "scene.json", doc)

    @staticmethod
    def load(folder: Path, images: Path | None = None) -> "Scene":
        """The scene saved in folder; its photos looked for under `images` when given, else where
        scene.json recorded them (`located` says where they were found and which are missing)."""
        folder = Path(folder)
        try:
            doc = json.loads((folder / "scene.json").read_text())
            cams = [Camera.from_dict(c) for c in doc["cameras"]]
            located = _locate_images(folder, doc, images)
            views = [_view_from_dict(d, located.root if located is not None else folder, len(cams))
                     for d in doc["views"]]
            sim = Similarity.from_dict(doc["to_normalised"])
            with np.load(folder / "points.npz") as z:
                for i, v in enumerate(views):
                    if f"kp{i}" in z:
                        v.keypoints = z[f"kp{i}"]
                lens, flat = z["track_len"], z["track_flat"]
                tracks = np.split(flat, np.cumsum(lens)[:-1]) if len(lens) else []
                pts = Points(z["xyz"], z["rgb"], list(tracks))
        except Exception as exc:  # noqa: BLE001 - a damaged JSON or zip file fails in many ways (zipfile alone raises six kinds)
            raise FieldsError(f"cannot read scene in {folder}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
        return Scene(cams, views, pts, sim, located)

    def require_images(self) -> None:
        """Raise one line when photos this scene was loaded with are missing or changed (training and
        evaluation read them)."""
        problem = self.located.problem() if self.located is not None else None
        if problem:
            raise FieldsError(f"{problem}; give the photos' folder with --images DIR")


def _locate_images(folder: Path, doc: dict, override: Path | None) -> Located | None:
    """Where the photos of a saved scene are (None for a scene without image files)."""
    if "images" not in doc:
        _upgrade_record(folder, doc)
    entries = [(d[key], Fingerprint.from_dict(d["fingerprint"]) if key == "path" and "fingerprint" in d else None)
               for d in doc["views"] for key in ("path", "mask") if d.get(key)]
    return locate(folder, doc["images"], entries, override) if "images" in doc else None


def _upgrade_record(folder: Path, doc: dict) -> None:
    """A scene.json written before the photos' root was recorded (paths relative to the run folder, no
    fingerprints), rewritten in memory into today's form."""
    paths = [(folder / d[k]).resolve() for d in doc["views"] for k in ("path", "mask") if d.get(k)]
    root = common_root(paths)
    if root is None:
        return
    for d in doc["views"]:
        for k in ("path", "mask"):
            if d.get(k):
                d[k] = os.path.relpath((folder / d[k]).resolve(), root)
    doc["images"] = root_record(root, folder)


def _view_from_dict(d: dict, root: Path, n_cameras: int) -> View:
    """A view of scene.json, its paths under the photos' root; a malformed entry raises ValueError."""
    camera = int(d["camera"])
    if not 0 <= camera < n_cameras:
        raise ValueError(f"view {d['name']!r} refers to camera {camera} of {n_cameras}")
    v = View(str(d["name"]), None if d["path"] is None else (root / d["path"]).resolve(), camera,
             split=str(d.get("split", "train")), mask=(root / d["mask"]).resolve() if d.get("mask") else None,
             fingerprint=Fingerprint.from_dict(d["fingerprint"]) if "fingerprint" in d else None)
    if "R" in d:
        v.R, v.t = _finite(d["R"], (3, 3), "R"), _finite(d["t"], (3,), "t")
    return v


def _finite(value, shape: tuple[int, ...], name: str) -> np.ndarray:
    """value as a float array of this shape with finite entries, else ValueError naming it."""
    a = np.array(value, float)
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} is not a finite {'x'.join(map(str, shape))} array")
    return a


def _relpath(path: Path, root: Path | None) -> str:
    return os.path.relpath(Path(path).resolve(), Path(root).resolve() if root is not None else Path.cwd())


def look_at(center: np.ndarray, target: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera pose of a camera at `center` looking at `target`, image-up along `up`."""
    z = target - center
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0]))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return R, -R @ center
