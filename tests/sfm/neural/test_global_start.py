"""The neural SfM's global start (sfm/neural/start.py): a GLOMAP model moved into the SDF's frame with
every projection kept, and the observations GLOMAP would not keep taken out of their tracks."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from synthetic import exact_keypoints, orbit, scene_from_poses

from fields.scene import Camera
from sfm.frontend.tracks import Correspondences
from sfm.geometry.triangulation import reprojection_error
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.start import GlobalSolution, start_globally


def glomap_model(keypoint_offsets: dict[tuple[int, int], float] | None = None):
    """300 points seen by 5 views (4 placed by "GLOMAP", the 5th not) in an arbitrary frame, matched in
    every pair: (corr, scene, GLOMAP's solution, its keypoints), keypoint (view, k) moved right by
    keypoint_offsets[(view, k)] px."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) * 7.0 + np.array([40.0, -12.0, 5.0])
    cam = Camera.from_focal(320, 240, 300.0, 300.0)
    refined = Camera.from_focal(320, 240, 290.0, 290.0)
    poses = dict(enumerate(orbit(np.linspace(0.0, 1.2, 5), 60.0, 60.0 * 0.3, target=(40.0, -12.0, 5.0))))
    keypoints = exact_keypoints(refined.K, poses.values(), X)
    for (v, k), dx in (keypoint_offsets or {}).items():
        keypoints[v][k, 0] += dx
    ident = np.stack([np.arange(300), np.arange(300)], 1)
    corr = Correspondences(keypoints + [np.zeros((0, 2))], {(i, j): ident for i in range(5) for j in range(i + 1, 5)})
    scene = scene_from_poses(cam, [None] * 6, name="v{}.png")
    sol = GlobalSolution({v: poses[v] for v in range(4)}, {v: refined for v in range(4)}, X,
                         {(v, k): k for v in range(5) for k in range(300)})
    return corr, scene, sol, keypoints


def test_the_global_start_keeps_every_projection_in_the_sdf_frame():
    """GLOMAP's model (any scale and offset) moved into the SDF's cube: every point still projects onto
    its keypoint, the points' median sits at the origin with their 90th-percentile radius at 0.5, and
    the refined camera reaches every view sharing it."""
    corr, scene, sol, keypoints = glomap_model()
    rec = start_globally(corr, scene, sol, NeuralSfMOptions(init_fit_steps=5))
    assert sorted(rec.poses) == [0, 1, 2, 3] and rec.has_point().all()
    for v in range(4):
        R, t = rec.poses[v]
        xyz = rec.xyz[rec.track_of[v]]
        assert reprojection_error(rec.cameras[v].K, R, t, xyz, keypoints[v]).max() < 1e-6
    assert np.abs(np.median(rec.xyz, axis=0)).max() < 1e-9
    assert abs(np.percentile(np.linalg.norm(rec.xyz, axis=1), 90) - 0.5) < 1e-9
    assert all(c.K[0, 0] == 290.0 for c in rec.cameras)  # view 5, not placed, shares the refined camera
    assert rec.reports[0].registered and rec.reports[0].inliers == 300 and 5 not in rec.reports


def test_the_global_start_takes_misfit_observations_out_of_their_tracks_not_the_points():
    """Our tracks join every match, GLOMAP's keep an observation only where it fits: an observation far
    from its point leaves the track and the point stays while 3 placed views still see it (else it
    goes, as the first bundle adjustment would drop it); a view placed wrong (most of its observations
    misfit) keeps its tracks for PnP."""
    corr, scene, sol, _ = glomap_model({(1, 5): 30.0, (1, 9): -12.0, (2, 9): 25.0})
    rec = start_globally(corr, scene, sol, NeuralSfMOptions(init_fit_steps=5))
    assert rec.track_of[1][5] == -1 and rec.track_of[1][9] == -1 and rec.track_of[2][9] == -1
    assert [v for v, _ in rec.tracks[rec.track_of[0][5]]] == [0, 2, 3, 4] and rec.has_point()[rec.track_of[0][5]]
    assert not rec.has_point()[rec.track_of[0][9]]  # views 0 and 3 alone of the placed views still see it
    assert rec.has_point().sum() == 299
    assert all(len(t) == 5 for k, t in enumerate(rec.tracks) if k not in (rec.track_of[0][5], rec.track_of[0][9]))
    R, t = sol.poses[2]
    sol.poses[2] = (Rotation.from_euler("x", 5, degrees=True).as_matrix() @ R, t)  # placed 5 deg off
    corr, scene, _, _ = glomap_model({(1, 5): 30.0})
    rec = start_globally(corr, scene, sol, NeuralSfMOptions(init_fit_steps=5))
    assert rec.track_of[1][5] == -1 and (rec.track_of[2] >= 0).all()
