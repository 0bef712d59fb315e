"""The front end on the demo scene: matches read back from pycolmap agree with the true geometry."""

from __future__ import annotations

import numpy as np

from conftest import DEMO
from sfm.colmap_backend import FrontEndOptions
from sfm.features import Correspondences, build_tracks, match_views
from sfm.io import read_transforms


def test_tracks_join_matches_and_drop_inconsistent_ones():
    kp = [np.zeros((5, 2)) for _ in range(3)]
    pairs = {(0, 1): np.array([[0, 1], [2, 2]]), (1, 2): np.array([[1, 4], [3, 0]]), (0, 2): np.array([[2, 3]])}
    tracks = build_tracks(Correspondences(kp, pairs))
    as_sets = sorted(sorted(map(tuple, t.tolist())) for t in tracks)
    # (0,0)-(1,1)-(2,4) is one track; (0,2)-(1,2)-(2,3) another; (1,3)-(2,0) a pair
    assert as_sets == [[(0, 0), (1, 1), (2, 4)], [(0, 2), (1, 2), (2, 3)], [(1, 3), (2, 0)]]
    pairs[(0, 2)] = np.array([[2, 3], [0, 3]])  # now one component holds two keypoints of view 0
    assert all(len(np.unique(t[:, 0])) == len(t) for t in build_tracks(Correspondences(kp, pairs)))


def test_demo_matches_satisfy_the_true_epipolar_geometry(tmp_path):
    scene = read_transforms(DEMO / "transforms.json")
    corr = match_views(scene, DEMO / "images", tmp_path, FrontEndOptions())
    assert all(len(k) > 300 for k in corr.keypoints)
    assert len(corr.pairs) > 100
    cam = scene.cameras[0]
    Kinv = np.linalg.inv(cam.K)
    errs = []
    for (i, j), m in list(corr.pairs.items())[:40]:
        a, b = scene.views[i], scene.views[j]
        R, t = b.R @ a.R.T, b.t - b.R @ a.R.T @ a.t
        E = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]]) @ R
        F = Kinv.T @ E @ Kinv
        x1 = np.c_[corr.keypoints[i][m[:, 0]], np.ones(len(m))]
        x2 = np.c_[corr.keypoints[j][m[:, 1]], np.ones(len(m))]
        line = x1 @ F.T
        errs.append(np.abs((x2 * line).sum(1)) / np.linalg.norm(line[:, :2], axis=1))
    assert np.median(np.concatenate(errs)) < 1.0  # pixels from the true epipolar line
    tracks = build_tracks(corr)
    assert len(tracks) > 500 and max(len(t) for t in tracks) >= 4
