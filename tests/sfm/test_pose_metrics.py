"""Pose metrics (sfm/pose_metrics.py) on moved and perturbed copies of the demo scene's poses, whose
errors are known by construction: the alignment, the errors, the AUC."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import demo_truth, moved, rotation

from fields.scene import Similarity
from sfm.pose_metrics import compare_poses, pose_auc, umeyama


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    sim = Similarity(3.0, rotation([1, 2, 3], 40), np.array([1.0, -2.0, 0.5]))
    est = umeyama(X, sim.apply(X))
    assert est.scale == pytest.approx(3.0) and np.allclose(est.R, sim.R) and np.allclose(est.t, sim.t)


def test_two_misplaced_views_keep_their_errors_and_leave_the_others_exact():
    """Two views turned 20 deg about the scene's centre (as a look-alike pair placed wrongly): the
    alignment rests on the other 30, whose errors stay zero; plain least squares would spread the
    two views' error over all of them."""
    ref = demo_truth()
    pred = moved(ref, Similarity(0.5, rotation([0, 1, 0], 25), np.array([1.0, 2.0, 3.0])))
    turn = rotation([1, 1, 0], 20)
    centre = np.mean([v.center for v in pred.views], axis=0)
    for k in (4, 17):
        v = pred.views[k]
        c = centre + turn @ (v.center - centre)
        v.R = v.R @ turn.T
        v.t = -v.R @ c
    r = compare_poses(pred, ref)
    assert r.aligned == 30 and r.registered == 32
    assert r.rotation_error_median_deg < 1e-6 and r.center_error_median < 1e-9
    assert r.rotation_error_mean_deg == pytest.approx(2 * 20.0 / 32, rel=1e-6)
    c_pred = np.array([v.center for v in pred.views])
    c_ref = np.array([v.center for v in ref.views])
    plain = umeyama(c_pred, c_ref)
    spread = [np.degrees(np.arccos(np.clip((np.trace(v.R @ plain.R.T @ w.R.T) - 1) / 2, -1, 1)))
              for v, w in zip(pred.views, ref.views)]
    assert np.median(spread) > 0.1


def test_auc_of_known_errors():
    assert pose_auc(np.zeros(10)) == pytest.approx([1.0, 1.0, 1.0])
    assert pose_auc(np.full(10, np.inf)) == pytest.approx([0.0, 0.0, 0.0])
    # SuperGlue's convention: recall piecewise linear through (0, 0) and (e_k, k / n).
    # Four errors of 2.5 deg: a ramp from (0, 0) to (2.5, 1/4), then recall 1 up to 5 deg.
    assert pose_auc(np.full(4, 2.5))[0] == pytest.approx((0.5 * 2.5 * 0.25 + 2.5 * 1.0) / 5.0)
    # errors 1, 2, 3, 4 deg: a straight ramp to (4, 1), then 1 up to 5 deg
    assert pose_auc(np.array([1.0, 2.0, 3.0, 4.0]))[0] == pytest.approx((0.5 * 4 * 1 + 1.0) / 5.0)


def test_a_similarity_moved_copy_has_zero_error():
    ref = demo_truth()
    pred = moved(ref, Similarity(0.3, rotation([0, 1, 1], 70), np.array([5.0, 1.0, -2.0])))
    r = compare_poses(pred, ref)
    assert r.registered == r.total == 32
    assert r.rotation_error_mean_deg < 1e-6 and r.center_error_mean < 1e-9
    assert r.auc5 == pytest.approx(1.0)


def test_known_rotation_and_centre_perturbations_are_measured():
    ref = demo_truth()
    pred = moved(ref, Similarity(2.0, rotation([1, 0, 0], 30), np.zeros(3)))
    v = pred.views[3]
    c = v.center
    v.R = rotation([0, 0, 1], 2.0) @ v.R  # turn camera 3 by 2 degrees about its own centre
    v.t = -v.R @ c
    r = compare_poses(pred, ref)
    assert r.rotation_error_mean_deg == pytest.approx(2.0 / 32, rel=1e-3)
    assert r.center_error_mean < 1e-9
    # drop one view: 31 registered, and the pairs it belonged to count as failures
    pred.views[5].R = pred.views[5].t = None
    r = compare_poses(pred, ref)
    assert r.registered == 31
    assert r.auc20 < 1.0 - 31 / (32 * 31 / 2) + 1e-9
