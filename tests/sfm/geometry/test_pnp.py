"""Registration by PnP on synthetic correspondences with a known pose."""

from __future__ import annotations

import numpy as np
from synthetic import look_at_target, points_in_box, project

from fields.scene import Camera
from sfm.geometry.pnp import estimate_pose


def rotation_error_deg(A: np.ndarray, B: np.ndarray) -> float:
    c = (np.trace(A @ B.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def synthetic(n: int, outliers: float, noise_px: float, seed: int = 0):
    """One camera looking at n points in a cube: (camera, R, t, points, pixels, outlier mask), the pixels
    with Gaussian noise of noise_px and a share `outliers` of them replaced by random pixels."""
    rng = np.random.default_rng(seed)
    cam = Camera.from_focal(640, 480, 520.0, 520.0, 322.0, 238.0)
    [(R, t)] = look_at_target([(2.5, -1.0, 1.2)])
    X = points_in_box(rng, n, 0.6)
    x = project(cam.K, (R, t), X)
    if noise_px:
        x = x + rng.normal(0, noise_px, size=(n, 2))
    bad = rng.random(n) < outliers
    x[bad] = rng.uniform([0, 0], [640, 480], size=(int(bad.sum()), 2))
    return cam, R, t, X, x, bad


def test_noise_free_pnp_recovers_the_rotation_within_0_1_deg():
    cam, R, t, X, x, _ = synthetic(80, 0.0, 0.0)
    res = estimate_pose(x, X, cam)
    assert res is not None and res.num_inliers == 80
    assert rotation_error_deg(res.R, R) < 0.1
    assert np.linalg.norm(res.t - t) < 1e-3


def test_pnp_rejects_outliers_and_keeps_the_pose():
    cam, R, t, X, x, bad = synthetic(200, 0.3, 0.5, seed=1)
    res = estimate_pose(x, X, cam)
    assert res is not None
    assert rotation_error_deg(res.R, R) < 0.2
    assert (res.inliers & bad).sum() <= 2 and (res.inliers[~bad]).mean() > 0.95


def test_too_few_correspondences_register_nothing():
    cam, _, _, X, x, _ = synthetic(8, 0.0, 0.0)
    assert estimate_pose(x, X, cam) is None
