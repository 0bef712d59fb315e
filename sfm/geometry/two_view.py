"""Two-view initialisation: the pair with many inliers and a wide enough baseline, its relative pose
from the essential matrix (pycolmap LO-RANSAC), and its triangulated points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pycolmap

from fields.scene import Camera
from sfm.frontend.tracks import Correspondences
from sfm.geometry.triangulation import (
    projection,
    reprojection_error,
    triangulate_dlt,
    triangulation_angle_deg,
)
from sfm.io.colmap_model import camera_to_colmap


@dataclass
class TwoView:
    i: int
    j: int
    R: np.ndarray  # view j from view i (view i is the world frame)
    t: np.ndarray  # unit length
    matches: np.ndarray  # (M, 2) inlier keypoint indices
    points: np.ndarray  # (M, 3) triangulated in view i's frame
    good: np.ndarray  # (M,) bool: in front of both, small reprojection error, enough angle
    median_angle: float


def relative_pose(cam: Camera, corr: Correspondences, i: int, j: int, max_error_px: float = 2.0,
                  seed: int = 0) -> TwoView | None:
    """Relative pose of views i < j and their triangulation, or None when the estimate fails."""
    m = corr.pairs.get((i, j))
    if m is None or len(m) < 30:
        return None
    x1, x2 = corr.keypoints[i][m[:, 0]], corr.keypoints[j][m[:, 1]]
    opts = pycolmap.RANSACOptions()
    opts.max_error = max_error_px
    opts.random_seed = seed
    c = camera_to_colmap(cam, 1)
    est = pycolmap.estimate_relative_pose(c, x1, c, x2, opts)
    if est is None:
        return None
    pose = est["cam2_from_cam1"]
    R, t = np.asarray(pose.rotation.matrix()), np.asarray(pose.translation)
    t = t / max(np.linalg.norm(t), 1e-12)
    inl = np.asarray(est["inlier_mask"], bool)
    m, x1, x2 = m[inl], x1[inl], x2[inl]
    K = cam.K
    X = triangulate_dlt(projection(K, np.eye(3), np.zeros(3)), projection(K, R, t), x1, x2)
    e1 = reprojection_error(K, np.eye(3), np.zeros(3), X, x1)
    e2 = reprojection_error(K, R, t, X, x2)
    ang = triangulation_angle_deg(X, np.zeros(3), -R.T @ t)
    good = (e1 < 4.0) & (e2 < 4.0) & (ang > 1.0)
    med = float(np.median(ang[good])) if good.any() else 0.0
    return TwoView(i, j, R, t, m, X, good, med)


def initial_pair(cam: Camera, corr: Correspondences, candidates: int = 12, min_angle_deg: float = 4.0,
                 seed: int = 0) -> TwoView | None:
    """Among the pairs with the most matches, the one with the most well-triangulated points whose
    median triangulation angle reaches min_angle_deg (else the widest-angle one)."""
    ranked = sorted(corr.pairs, key=lambda p: -len(corr.pairs[p]))[:candidates]
    tried = [tv for tv in (relative_pose(cam, corr, i, j, seed=seed) for i, j in ranked) if tv is not None]
    if not tried:
        return None
    wide = [tv for tv in tried if tv.median_angle >= min_angle_deg]
    if wide:
        return max(wide, key=lambda tv: int(tv.good.sum()))
    return max(tried, key=lambda tv: tv.median_angle * int(tv.good.sum()))
