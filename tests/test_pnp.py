"""Registration by PnP on synthetic correspondences with a known pose."""

from __future__ import annotations

import numpy as np

from fields.scene import Camera, look_at
from sfm.geometry.pnp import estimate_pose


def rotation_error_deg(A: np.ndarray, B: np.ndarray) -> float:
    c = (np.trace(A @ B.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def synthetic(n: int, outliers: float, noise_px: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    cam = Camera.from_focal(640, 480, 520.0, 520.0, 322.0, 238.0)
    R, t = look_at(np.array([2.5, -1.0, 1.2]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    X = rng.uniform(-0.6, 0.6, size=(n, 3))
    xc = X @ R.T + t
    x = xc[:, :2] / xc[:, 2:] * 520.0 + [322.0, 238.0] + rng.normal(0, noise_px, size=(n, 2)) if noise_px else \
        xc[:, :2] / xc[:, 2:] * 520.0 + [322.0, 238.0]
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
