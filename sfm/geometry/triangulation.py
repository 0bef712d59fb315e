"""Triangulation of matched pixels: linear (DLT) for many points at once, checks by reprojection
error, depth and triangulation angle, and Level-S2fM's variant that puts points on the SDF."""

from __future__ import annotations

import numpy as np
import torch

from fields.geometry.level_set import newton_snap
from fields.geometry.rays import box_bounds, to_pixels
from fields.geometry.sphere_tracing import sphere_trace


def projection(K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    return K @ np.c_[R, t]


def triangulate_dlt(P1: np.ndarray, P2: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """(N, 3) points from pixels x1, x2 (N, 2) seen by 3x4 projections P1, P2 (batched SVD; a loop
    over pycolmap's per-point call would cost more than the whole solve)."""
    A = np.stack([x1[:, :1] * P1[2] - P1[0], x1[:, 1:] * P1[2] - P1[1],
                  x2[:, :1] * P2[2] - P2[0], x2[:, 1:] * P2[2] - P2[1]], axis=1)  # (N, 4, 4)
    A = A / np.linalg.norm(A, axis=2, keepdims=True).clip(1e-12)
    X = np.linalg.svd(A)[2][:, -1]
    w = X[:, 3:]
    w = np.where(np.abs(w) < 1e-12, 1e-12, w)
    return X[:, :3] / w


def triangulate_track(P: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The point (3,) seen at pixels x (L, 2) by the 3x4 projections P (L of them), linear least squares."""
    A = np.concatenate([x[:, :1] * np.stack([p[2] for p in P]) - np.stack([p[0] for p in P]),
                        x[:, 1:] * np.stack([p[2] for p in P]) - np.stack([p[1] for p in P])])
    A = A / np.linalg.norm(A, axis=1, keepdims=True).clip(1e-12)
    X = np.linalg.svd(A)[2][-1]
    return X[:3] / (X[3] if abs(X[3]) > 1e-12 else 1e-12)


def reproject(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (N, 2), depths (N,)) of world points in a camera."""
    xc = X @ R.T + t
    return to_pixels(K, xc), xc[:, 2]


def reprojection_error(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pixel distance of projected points from their observations (inf behind the camera)."""
    uv, z = reproject(K, R, t, X)
    err = np.linalg.norm(uv - x, axis=1)
    return np.where(z > 1e-9, err, np.inf)


def triangulation_angle_deg(X: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    a, b = c1 - X, c2 - X
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pixel_rays(K: np.ndarray, R: np.ndarray, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-frame origins and unit directions of the rays through pixels x (N, 2)."""
    dirs_cam = np.c_[(x - K[:2, 2]) / np.diag(K)[:2], np.ones(len(x))]
    d = dirs_cam @ R  # R^T applied to each row
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.broadcast_to(-R.T @ t, d.shape).copy(), d


def trace_pixels(sdf, K: np.ndarray, R: np.ndarray, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the rays through pixels x (N, 2) first meet the SDF's zero level set inside its cube
    [-1, 1]^3: (points (N, 3), hit (N,)). Traced from where each ray enters the cube to where it leaves
    it, so that cameras at any distance (a narrow field of view puts them far out) reach the surface."""
    o, d = pixel_rays(K, R, t, x)
    o_t, d_t = torch.from_numpy(o).float(), torch.from_numpy(d).float()
    near, far, meets = box_bounds(o_t, d_t)
    res = sphere_trace(sdf, o_t, d_t, near, far, max_steps=48)
    return res.points(o_t, d_t).double().numpy(), (res.hit & meets).numpy()


def worst_error(K: np.ndarray, pose1: tuple[np.ndarray, np.ndarray], pose2: tuple[np.ndarray, np.ndarray],
                X: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Per point, the larger of its reprojection errors in the two views (inf behind either camera,
    and for NaN points)."""
    return np.maximum(reprojection_error(K, *pose1, X, x1), reprojection_error(K, *pose2, X, x2))


def triangulate_on_sdf(sdf, K: np.ndarray, pose1: tuple[np.ndarray, np.ndarray], pose2: tuple[np.ndarray, np.ndarray],
                       x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level-S2fM's triangulation: trace both rays of each match onto the SDF and take the midpoint of
    the two hits; where a ray misses, the DLT point snapped onto the surface by Newton steps. Where the
    DLT point reprojects better than that point on the surface, the DLT point is kept (the neural BA
    snaps it onto the level set later): a long lens turns the misfit of a surface fitted to few points
    into pixels (PnP on such points can fail to place a view). Returns (points
    (N, 3), |sdf| at them), so the caller can reject points far from the level set."""
    X = triangulate_dlt(projection(K, *pose1), projection(K, *pose2), x1, x2)
    hits = [trace_pixels(sdf, K, R, t, x) for (R, t), x in ((pose1, x1), (pose2, x2))]
    both = hits[0][1] & hits[1][1]
    mid = 0.5 * (hits[0][0] + hits[1][0])
    snapped, _ = newton_snap(sdf, torch.from_numpy(X).float(), steps=2)
    out = np.where(both[:, None], mid, snapped.double().numpy())
    out = np.where((worst_error(K, pose1, pose2, X, x1, x2) < worst_error(K, pose1, pose2, out, x1, x2))[:, None],
                   X, out)
    with torch.no_grad():
        residual = sdf(torch.from_numpy(out).float()).abs().double().numpy()
    return out, residual
