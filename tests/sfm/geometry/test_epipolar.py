"""The epipolar geometry of two views (sfm/geometry/epipolar.py): the fundamental matrix of two known
poses, and the Sampson error that measures how far a match is from it."""

from __future__ import annotations

import numpy as np
from synthetic import ring

from sfm.geometry.epipolar import fundamental, sampson_error


def test_sampson_error_is_zero_on_true_matches_and_grows_off_the_epipolar_line():
    cam, poses, kps, _ = ring()
    F = fundamental(cam.K, poses[0], cam.K, poses[1])
    x1, x2 = kps[0], kps[1]
    assert np.abs(np.sum(np.c_[x2, np.ones(len(x2))] * (np.c_[x1, np.ones(len(x1))] @ F.T), 1)).max() < 1e-6
    assert sampson_error(F, x1, x2).max() < 1e-6
    line = np.c_[x1, np.ones(len(x1))] @ F.T  # epipolar lines in image 2
    normal = line[:, :2] / np.linalg.norm(line[:, :2], axis=1, keepdims=True)
    along = np.stack([-normal[:, 1], normal[:, 0]], 1)
    assert sampson_error(F, x1, x2 + 3.0 * along).max() < 0.05  # sliding along the line costs nothing
    e1 = sampson_error(F, x1, x2 + 1.0 * normal)
    e2 = sampson_error(F, x1, x2 + 2.0 * normal)
    # 1 px off the line in one image: between 1/sqrt(2) and 1 px (Sampson spreads it over both images)
    assert (e1 > 0.5).all() and (e1 <= 1.0 + 1e-6).all()
    np.testing.assert_allclose(e2, 2 * e1, rtol=0.05)
