"""Registering a view from 2D-3D correspondences: pycolmap's LO-RANSAC P3P, then non-linear refinement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pycolmap

from fields.scene import Camera
from sfm.io.colmap_model import camera_to_colmap


@dataclass
class PnPResult:
    R: np.ndarray  # OpenCV world-to-camera rotation
    t: np.ndarray
    inliers: np.ndarray  # (N,) bool over the given correspondences

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())


def estimate_pose(points2d: np.ndarray, points3d: np.ndarray, camera: Camera, max_error_px: float = 3.0,
                  min_inliers: int = 12, seed: int = 0) -> PnPResult | None:
    """The camera pose seeing points3d at pixels points2d (intrinsics fixed), or None when RANSAC finds
    fewer than min_inliers inliers."""
    if len(points2d) < max(min_inliers, 4):
        return None
    est = pycolmap.AbsolutePoseEstimationOptions()
    est.ransac.max_error = max_error_px
    est.ransac.random_seed = seed
    ref = pycolmap.AbsolutePoseRefinementOptions()
    ref.refine_focal_length = False
    ref.refine_extra_params = False
    out = pycolmap.estimate_and_refine_absolute_pose(np.asarray(points2d, np.float64), np.asarray(points3d, np.float64),
                                                     camera_to_colmap(camera, 1), est, ref)
    if out is None or out["num_inliers"] < min_inliers:
        return None
    pose = out["cam_from_world"]
    return PnPResult(np.asarray(pose.rotation.matrix()), np.asarray(pose.translation), np.asarray(out["inlier_mask"], bool))
