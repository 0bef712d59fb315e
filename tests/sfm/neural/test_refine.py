"""The classical polish and refit of the neural SfM's model (sfm/neural/refine.py): points it leaves
far from an observation or behind a view that observes them are dropped."""

from __future__ import annotations

import numpy as np
from synthetic import neighbour_pairs, reconstruction, ring

from sfm.neural.options import NeuralSfMOptions
from sfm.neural.refine import polish_and_refit
from sfm.neural.state import mean_error
from sfm.neural.withdraw import drop_far_points


def test_points_the_classical_polish_leaves_far_from_an_observation_or_behind_a_view_are_dropped():
    """Ceres moves free points under a robust loss: a point can end far from one observation, or behind
    a view that observes it (lego, 100 views: a mean reprojection error of inf px). Such points go, as
    the neural BA drops them, and the mean error stays finite."""
    cam, poses, kps, X = ring()
    kps[3] = kps[3].copy()
    kps[3][7] += 40.0  # view 3 sees point 7 40 px off; the other seven views agree on it
    rec = reconstruction(cam, poses, kps, neighbour_pairs(len(poses), len(X)))
    truth = np.array([X[track[0, 1]] for track in rec.tracks])
    rec.xyz = truth.copy()
    polish_and_refit(rec, NeuralSfMOptions(), refit=False)
    kept = rec.has_point()
    assert [int(rec.tracks[k][0, 1]) for k in np.flatnonzero(~kept)] == [7]
    assert mean_error(rec) < 0.01
    R0, t0 = rec.poses[0]
    behind = int(np.flatnonzero(kept)[0])
    rec.xyz[behind] = -R0.T @ t0 - 2.0 * R0[2]  # two units behind view 0, which observes it
    assert drop_far_points(rec, 4.0) == 1 and not rec.has_point()[behind]
    assert np.isfinite(mean_error(rec))
