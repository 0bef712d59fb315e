"""Synthetic scenes for the tests, built one way everywhere (as COLMAP's scene/synthetic.h serves its
tests): rotations, points in a box or on a sphere, cameras looking at a target or on an orbit around
it, the points' projections into the views, a Scene or a neural-SfM Reconstruction from poses, and
an analytic sphere to trace rays against; image files that must not be read (decompression bombs,
truncated, empty, not images). Also where the real scenes live: the demo scene (rendered
by apps/demo_scene.py, with exact poses and surface) and the reference data in ../shared/data.

Poses are the project's: OpenCV world-to-camera (R, t), x_cam = R x + t. A builder that draws at
random takes the generator from its caller and draws in a fixed order, so a test's scene is the
same on every run and its thresholds keep holding; tests whose numbers depend on a layout pass its
parameters (seed, distance, field of view) explicitly.

Importable as `synthetic` from every test: tests/ is on sys.path (see conftest.py).
"""

from __future__ import annotations

import copy
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fields.scene import Camera, Points, Scene, Similarity, View, look_at

Pose = tuple[np.ndarray, np.ndarray]

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEMO = ROOT / "assets" / "demo"


# ----------------------------------------------------------------------------- the real scenes


def data_path(*parts: str) -> Path:
    """A path in ../shared/data, skipping the test when it is absent (the data is not in the repository)."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference data {p} is absent")
    return p


def demo_truth() -> Scene:
    """The demo scene's ground truth: its 32 views (two rings around textured primitives), exact poses."""
    from sfm.io import read_transforms

    return read_transforms(DEMO / "transforms.json")


# ----------------------------------------------------------------------------- rotations


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random rotation matrix (det +1) from the QR decomposition of a Gaussian matrix (draws 9 normals)."""
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def rotation(axis, deg: float) -> np.ndarray:
    """The rotation by deg degrees about axis (Rodrigues' formula, independent of the code under test)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(deg)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


# ----------------------------------------------------------------------------- points


def points_in_box(rng: np.random.Generator, n: int, half: float) -> np.ndarray:
    """n points drawn uniformly in the cube [-half, half]^3 (one (n, 3) uniform draw)."""
    return rng.uniform(-half, half, (n, 3))


def points_on_sphere(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    """n points drawn uniformly on the sphere of the given radius about the origin (one (n, 3) normal draw)."""
    g = rng.normal(size=(n, 3))
    return radius * g / np.linalg.norm(g, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- cameras


def look_at_target(centres, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> list[Pose]:
    """Poses of cameras at `centres`, each looking at `target` with image-up along `up`."""
    target, up = np.asarray(target, float), np.asarray(up, float)
    return [look_at(np.asarray(c, float), target, up) for c in centres]


def ring_angles(n: int) -> list[float]:
    """n angles evenly spaced around a circle, from 0 (2 pi k / n)."""
    return [2 * np.pi * k / n for k in range(n)]


def orbit(angles, radius: float, height: float = 0.0, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> list[Pose]:
    """Cameras on a horizontal circle: at target + (radius cos a, radius sin a, height) for each angle
    a, looking at the target."""
    target = np.asarray(target, float)
    centres = [target + np.array([radius * np.cos(a), radius * np.sin(a), height]) for a in angles]
    return look_at_target(centres, target, up)


def posed_cameras(camera: Camera, poses: list[Pose]) -> list[tuple[Camera, np.ndarray, np.ndarray]]:
    """(camera, R, t) per pose: the form camera paths and surface visibility take."""
    return [(camera, R, t) for R, t in poses]


# ----------------------------------------------------------------------------- projection


def project(K: np.ndarray, pose: Pose, X: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) of world points X (N, 3) in a pinhole camera K with pose (R, t), without distortion."""
    R, t = pose
    xc = X @ R.T + t
    return xc[:, :2] / xc[:, 2:3] @ K[:2, :2].T + K[:2, 2]


def exact_keypoints(K: np.ndarray, poses, X: np.ndarray) -> list[np.ndarray]:
    """The projections of the same points into every view: exact keypoints, keypoint k of every view
    seeing point k."""
    return [project(K, pose, X) for pose in poses]


# ----------------------------------------------------------------------------- scenes


def scene_from_poses(camera: Camera, poses, name: str = "v{}", split: str = "train", keypoints=None,
                     points: Points | None = None) -> Scene:
    """A Scene of one camera and a view per pose (None: a view not registered), view k named
    name.format(k), without image files; keypoints[k] are view k's keypoints when given."""
    views = []
    for k, pose in enumerate(poses):
        R, t = (None, None) if pose is None else pose
        views.append(View(name.format(k), None, 0, R, t, split=split,
                          keypoints=None if keypoints is None else keypoints[k]))
    return Scene([camera], views, Points() if points is None else points)


def moved(scene: Scene, sim: Similarity) -> Scene:
    """A copy of the scene's poses expressed in the frame sim maps to: the same rig, a perfect
    prediction up to the gauge."""
    out = copy.deepcopy(scene)
    for v in out.views:
        v.R, v.t = sim.transform_pose(v.R, v.t)
    return out


# ----------------------------------------------------------------------------- the ring


def ring(n: int = 8, points: int = 200, seed: int = 0, distance: float = 3.0, fov_deg: float = 60.0):
    """n cameras (400x300 px) on a ring of radius `distance`, raised by 0.8 / 3 of it, looking at a
    cloud of points in the cube [-0.5, 0.5]^3, every point seen (and matched) in every view:
    (camera, poses, keypoints, points)."""
    rng = np.random.default_rng(seed)
    X = points_in_box(rng, points, 0.5)
    cam = Camera.from_fov(400, 300, np.radians(fov_deg))
    poses = orbit(ring_angles(n), distance, distance * (0.8 / 3))
    return cam, poses, exact_keypoints(cam.K, poses, X), X


def ring_scenes(noise_px: float, pose_error_deg: float, seed: int = 0) -> tuple[Scene, Scene]:
    """(model, reference) of ring(8, 300): the model has the ring's keypoints (plus Gaussian noise of
    noise_px) and one track per point (its point 0.01 off in x, y and z), its poses turned by
    pose_error_deg about random axes from the reference's."""
    from scipy.spatial.transform import Rotation

    cam, poses, kps, X = ring(8, 300, seed=0)
    rng = np.random.default_rng(seed)
    ref = scene_from_poses(cam, poses)
    wrong = [(Rotation.from_rotvec(np.radians(pose_error_deg) * rng.normal(size=3) / np.sqrt(3)).as_matrix() @ R, t)
             for R, t in poses]
    noisy = [k + rng.normal(0.0, noise_px, k.shape) for k in kps]
    tracks = [np.stack([np.arange(len(poses)), np.full(len(poses), p)], 1) for p in range(len(X))]
    points = Points(X + 0.01, np.zeros((len(X), 3), np.uint8), tracks)
    model = scene_from_poses(cam, wrong, keypoints=noisy, points=points)
    return model, ref


# ----------------------------------------------------------------------------- neural-SfM models


def reconstruction(cam: Camera, poses: list[Pose], kps: list[np.ndarray], pairs: dict):
    """A neural-SfM Reconstruction with every view placed at the given pose and registered, tracks
    built from the given matches (pairs: (i, j) -> keypoint index pairs), no point placed yet
    (zeros), the SDF a fresh seeded one and the gauge views 0 and 1."""
    from sfm.frontend.tracks import Correspondences, build_tracks
    from sfm.neural.state import Reconstruction, ViewReport, track_lookup
    from sfm.neural.surface import make_sdf

    corr = Correspondences(kps, pairs)
    tracks = build_tracks(corr)
    rec = Reconstruction([cam] * len(poses), tracks, track_lookup(corr, tracks), corr, make_sdf(0),
                         camera_index=[0] * len(poses))
    rec.xyz = np.zeros((len(tracks), 3))
    rec.poses = {v: p for v, p in enumerate(poses)}
    rec.reports = {v: ViewReport(True) for v in rec.poses}
    rec.gauge = (0, 1)
    return rec


def neighbour_pairs(n: int, points: int) -> dict[tuple[int, int], np.ndarray]:
    """Matches of the ring's views with their neighbours one and two steps away, each pair matching
    keypoint k with keypoint k for every point."""
    ident = np.stack([np.arange(points)] * 2, 1)
    return {(i, j): ident for i in range(n) for j in range(i + 1, n) if (j - i) % n in (1, 2, n - 1, n - 2)}


def sphere_sdf(radius: float = 0.5) -> SimpleNamespace:
    """An analytic SDF in the form the neural SfM calls it (sdf(x) on a tensor): a sphere about the origin."""
    return SimpleNamespace(sdf=lambda x: x.norm(dim=-1) - radius)


def sphere_ring(turned: int):
    """The ring around 200 points on a sphere of radius 0.5 (the SDF analytic, no point placed yet),
    view `turned` placed 40 deg off about the y axis: (the Reconstruction, the true poses, the points)."""
    from scipy.spatial.transform import Rotation

    cam, poses, _, _ = ring()
    X = points_on_sphere(np.random.default_rng(1), 200, 0.5)
    placed = list(poses)
    turn = Rotation.from_euler("y", 40, degrees=True).as_matrix()
    placed[turned] = (turn @ poses[turned][0], turn @ poses[turned][1])
    rec = reconstruction(cam, placed, exact_keypoints(cam.K, poses, X), neighbour_pairs(len(poses), len(X)))
    rec.sdf = sphere_sdf(0.5)
    rec.xyz = np.full((len(rec.tracks), 3), np.nan)
    return rec, poses, X


# ----------------------------------------------------------------------------- an analytic surface


class SphereSDF(torch.nn.Module):
    """|x - c| - r in float64 with a learnable radius: the exact distance function of a sphere."""

    def __init__(self, r: float = 0.5, c=(0.1, -0.05, 0.0)) -> None:
        super().__init__()
        self.r = torch.nn.Parameter(torch.tensor(r, dtype=torch.float64))
        self.c = torch.tensor(c, dtype=torch.float64)

    def forward(self, x):
        return (x - self.c).norm(dim=-1) - self.r


def closest_approach(o, d, c):
    """Distance from a sphere's centre c to rays o + s d (unit d)."""
    oc = o - c
    b = (oc * d).sum(-1)
    return torch.sqrt((oc * oc).sum(-1) - b * b)


def sphere_depth(o, d, c, r):
    """Depth of the first intersection of rays o + s d (unit d) with the sphere |x - c| = r (nan where they miss)."""
    oc = o - c
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - r * r)
    return -b - torch.sqrt(disc)


def png_bytes(width: int, height: int, idat: bytes | None = None, bad_crc: bool = False) -> bytes:
    """A 1-bit grey PNG written by hand, so its header may claim any size: the pixel data is `idat`
    (zlib data) or all black rows compressed here, which for a large claim is a decompression bomb
    (20000 x 15000 pixels fit in some 40 kB). bad_crc corrupts the header's checksum."""
    def chunk(kind: bytes, data: bytes, crc_xor: int = 0) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", (zlib.crc32(kind + data) ^ crc_xor) & 0xFFFFFFFF)

    if idat is None:
        row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the row's bits
        comp = zlib.compressobj(9)
        idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header, 1 if bad_crc else 0) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def bad_images(folder: Path) -> dict[str, str]:
    """One file of each kind a photo folder may hold by mistake or malice, written into folder: name ->
    the words the reader's warning about it should contain."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    no_pixels = zlib.compress(b"")  # for headers whose pixels are never read
    files = {
        "bomb.png": (png_bytes(100_000, 100_000, idat=no_pixels), "megapixel limit"),
        "real_bomb.png": (png_bytes(20_000, 15_000), "20000 x 15000 pixels"),
        "empty.jpg": (b"", "empty"),
        "text.png": (b"just some text, not a picture\n", "not an image"),
        "bad_crc.png": (png_bytes(8, 6, bad_crc=True), "not an image"),
        "zero_width.png": (png_bytes(0, 6, idat=no_pixels), "not an image"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "truncated.jpg", quality=95)
    whole = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])  # a whole header, half the pixels
    return {name: words for name, (_, words) in files.items()} | {"truncated.jpg": "truncated"}
