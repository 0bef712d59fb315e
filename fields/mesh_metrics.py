"""Surface accuracy: Chamfer distance and F-score between two meshes, from points sampled on each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree


@dataclass
class SurfaceReport:
    chamfer: float  # mean of the two directions' mean nearest distances, as a fraction of the reference's bbox diagonal
    fscore: float  # at threshold tau (fraction of the diagonal)
    precision: float
    recall: float
    tau: float


def surface_distance(pred: trimesh.Trimesh, ref: trimesh.Trimesh, n_points: int = 1_000_000, tau: float = 0.005,
                     seed: int = 0, cap: float = 0.1) -> SurfaceReport:
    """Chamfer and F-score@tau of pred against ref, both relative to ref's bounding-box diagonal.

    Distances are between point samples, so even identical surfaces measure about
    0.5 sqrt(area / n_points) (a few hundredths of a percent of the diagonal at a million points).
    Each distance is capped at `cap` of the diagonal (as DTU's evaluation caps outliers), which also
    keeps the nearest-neighbour search fast when the surfaces are far apart.
    """
    diag = float(np.linalg.norm(ref.bounds[1] - ref.bounds[0]))
    a = sample_surface(pred, n_points, seed)
    b = sample_surface(ref, n_points, seed + 1)
    d_ab = np.minimum(cKDTree(b).query(a, workers=-1, distance_upper_bound=cap * diag)[0] / diag, cap)
    d_ba = np.minimum(cKDTree(a).query(b, workers=-1, distance_upper_bound=cap * diag)[0] / diag, cap)
    precision, recall = float((d_ab < tau).mean()), float((d_ba < tau).mean())
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return SurfaceReport(float(0.5 * (d_ab.mean() + d_ba.mean())), f, precision, recall, tau)


def sample_surface(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> np.ndarray:
    """n points uniformly on the surface (by area)."""
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(pts)
