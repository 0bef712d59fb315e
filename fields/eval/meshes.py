"""Surface accuracy: Chamfer distance and F-score between two meshes, from points sampled on each,
optionally against only the part of the reference that its cameras saw (as DTU's evaluation does)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.ndimage import minimum_filter
from scipy.spatial import cKDTree

from fields.geometry.rays import project
from fields.scene import Camera


@dataclass
class SurfaceReport:
    chamfer: float  # mean of the two directions' mean nearest distances, as a fraction of the reference's bbox diagonal
    fscore: float  # at threshold tau (fraction of the diagonal)
    precision: float
    recall: float
    tau: float
    reference_share: float = 1.0  # share of the reference's area compared against
    seen: SurfaceReport | None = None  # the same against the part of the reference its cameras see


def surface_distance(pred: trimesh.Trimesh, ref: trimesh.Trimesh, n_points: int = 1_000_000, tau: float = 0.005,
                     seed: int = 0, cap: float = 0.1,
                     cameras: list[tuple[Camera, np.ndarray, np.ndarray]] | None = None) -> SurfaceReport:
    """Chamfer and F-score@tau of pred against ref, both relative to ref's bounding-box diagonal.

    Distances are between point samples, so even identical surfaces measure about
    0.5 sqrt(area / n_points) (a few hundredths of a percent of the diagonal at a million points).
    Each distance is capped at `cap` of the diagonal (as DTU's evaluation caps outliers), which also
    keeps the nearest-neighbour search fast when the surfaces are far apart.
    With cameras (K, world-to-camera R, t in ref's frame) the report's `seen` holds the same
    measures against only the part of ref some camera sees (DTU's observed-points protocol: nothing
    can reconstruct what no photo shows), from the same samples; pred is never restricted, so
    anything it adds still counts.
    """
    diag = float(np.linalg.norm(ref.bounds[1] - ref.bounds[0]))
    a = sample_surface(pred, n_points, seed)
    b, normals = sample_with_normals(ref, n_points, seed + 1)

    def nearest(points: np.ndarray, to: np.ndarray) -> np.ndarray:
        return np.minimum(cKDTree(to).query(points, workers=-1, distance_upper_bound=cap * diag)[0] / diag, cap)

    d_ba = nearest(b, a)
    report = chamfer_report(nearest(a, b), d_ba, tau)
    if cameras is not None:
        keep = visible_from(b, normals, n_points / ref.area, cameras, outward=bool(ref.is_volume))
        report.seen = chamfer_report(nearest(a, b[keep]), d_ba[keep], tau, float(keep.mean())) if keep.any() \
            else SurfaceReport(float("nan"), 0.0, 0.0, 0.0, tau, 0.0)
    return report


def chamfer_report(d_ab: np.ndarray, d_ba: np.ndarray, tau: float, share: float = 1.0) -> SurfaceReport:
    """Chamfer, precision, recall and F-score from the nearest distances both ways."""
    precision, recall = float((d_ab < tau).mean()), float((d_ba < tau).mean())
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return SurfaceReport(float(0.5 * (d_ab.mean() + d_ba.mean())), f, precision, recall, tau, share)


def sample_surface(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> np.ndarray:
    """n points uniformly on the surface (by area)."""
    return sample_with_normals(mesh, n, seed)[0]


def sample_with_normals(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points uniformly on the surface (by area) and the unit normals of their faces."""
    pts, face = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(pts), np.asarray(mesh.face_normals)[face]


def visible_from(points: np.ndarray, normals: np.ndarray, density: float,
                 cameras: list[tuple[Camera, np.ndarray, np.ndarray]], outward: bool = True) -> np.ndarray:
    """Which of `points` (samples of one surface, `density` per unit area, with their normals) some
    camera (K, world-to-camera R, t) sees; see `seen_by`. With outward normals (a closed,
    consistently wound reference) a point facing away from a camera is hidden from it;
    `outward=False` for meshes whose normals may point either way."""
    seen = np.zeros(len(points), bool)
    for cam, R, t in cameras:
        seen |= seen_by(points, normals, density, cam, np.asarray(R), np.asarray(t), outward)
    return seen


def seen_by(points: np.ndarray, normals: np.ndarray, density: float, cam: Camera, R: np.ndarray, t: np.ndarray,
            outward: bool = True, slack_px: float = 1.5, per_pixel: float = 8.0, max_tan: float = 5.0) -> np.ndarray:
    """Which of `points` one camera sees, judged by a depth buffer of the points themselves.

    The buffer's pixels are binned until the nearest surface facing the camera puts about
    `per_pixel` points in each, so hidden surface does not show through gaps in the sample (pixels
    still empty take their neighbours' nearest depth). A point is seen where it is no deeper than
    its pixel's nearest point plus the depth its surface spans across slack_px + tan(incidence)
    pixels: a surface seen at an angle recedes across each pixel. Lens distortion is ignored.
    """
    seen = np.zeros(len(points), bool)
    xc, uv, inside = project(cam, R, t, points)
    idx = np.flatnonzero(inside)
    if not len(idx):
        return seen
    uv, z = uv[idx], xc[idx, 2]
    f = min(cam.K[0, 0], cam.K[1, 1])
    near_pixel_area = (np.percentile(z, 2) / f) ** 2  # of one pixel on a facing surface, near the camera
    bin_ = max(1, int(np.ceil(np.sqrt(per_pixel / (density * near_pixel_area)))))
    w, h = -(-cam.width // bin_), -(-cam.height // bin_)
    pix = pixel_index(uv, w, bin_)
    zbuf = np.full(w * h, np.inf)
    np.minimum.at(zbuf, pix, z)
    zbuf = zbuf.reshape(h, w)
    zbuf = np.where(np.isinf(zbuf), minimum_filter(zbuf, size=3, mode="nearest"), zbuf).reshape(-1)
    cos = -np.einsum("ij,ij->i", xc[idx] @ R / np.linalg.norm(xc[idx], axis=1, keepdims=True), normals[idx])
    facing = cos > 0 if outward else np.ones(len(idx), bool)
    cos = np.abs(cos).clip(1e-6, 1.0)
    tan = np.minimum(np.sqrt(1.0 - cos**2) / cos, max_tan)
    seen[idx] = facing & (z <= zbuf[pix] + bin_ * z / f * (slack_px + tan))
    return seen


def pixel_index(uv: np.ndarray, width: int, bin_: int) -> np.ndarray:
    """Flat index of each pixel position in a buffer of `width` columns of bin_ x bin_ pixels."""
    col = np.floor(uv[:, 0] / bin_).astype(np.int64)
    row = np.floor(uv[:, 1] / bin_).astype(np.int64)
    return row * width + col
