"""The pose error a model's own observations allow: its tracks triangulated with the reference
(ground-truth) poses and bundle adjusted from there, with the same robust Ceres BA as the neural
SfM's last step (sfm/classical_polish.py).

A mapper whose error equals this floor has found the optimum of its keypoints and tracks; to do
better it needs better observations (more, or more precisely located), not a better optimiser.
The benchmark prints it beside each backend's error (benchmarks/sfm_benchmark.py).
"""

from __future__ import annotations

import numpy as np

from fields.scene import Points, Scene, View
from sfm.classical_polish import polish
from sfm.pose_metrics import PoseReport, compare_poses
from sfm.triangulation import reprojection_error, triangulate_track


def floor_model(pred: Scene, ref: Scene, max_error_px: float = 4.0) -> Scene:
    """pred's registered views that ref also has, at ref's poses with ref's cameras, with pred's
    keypoints and each of pred's tracks (on those views) triangulated there; tracks that reproject
    worse than max_error_px (or lie behind a camera) at the reference poses are left out."""
    ref_of = ref.view_by_name()
    views = [v for v in pred.views if v.registered and v.name in ref_of and ref.views[ref_of[v.name]].registered]
    index = {v.name: k for k, v in enumerate(views)}
    out_views = [View(v.name, None, r.camera, r.R, r.t, keypoints=v.keypoints)
                 for v, r in ((v, ref.views[ref_of[v.name]]) for v in views)]
    K = [ref.cameras[v.camera].K for v in out_views]
    P = [k @ np.c_[v.R, v.t] for k, v in zip(K, out_views)]
    xyz, tracks = [], []
    for track in pred.points.tracks:
        rows = np.array([[index[pred.views[int(w)].name], int(k)] for w, k in track
                         if pred.views[int(w)].name in index], np.int64).reshape(-1, 2)
        if len(np.unique(rows[:, 0])) < 2 or len(np.unique(rows[:, 0])) < len(rows):
            continue
        x = np.stack([out_views[w].keypoints[k] for w, k in rows])
        X = triangulate_track([P[w] for w in rows[:, 0]], x)
        err = max(reprojection_error(K[w], out_views[w].R, out_views[w].t, X[None], x[i:i + 1])[0]
                  for i, w in enumerate(rows[:, 0]))
        if err <= max_error_px:
            xyz.append(X)
            tracks.append(rows)
    points = np.array(xyz, float).reshape(-1, 3)
    return Scene(list(ref.cameras), out_views, Points(points, np.zeros((len(points), 3), np.uint8), tracks))


def observation_floor(pred: Scene, ref: Scene, refine_focal: bool = False) -> PoseReport:
    """Errors against ref of the bundle adjustment of pred's observations started from ref's poses,
    with ref's intrinsics held (the floor when even the focal length is known exactly)."""
    model = floor_model(pred, ref)
    poses = {k: (v.R, v.t) for k, v in enumerate(model.views)}
    cams, out, _ = polish(model.cameras, poses, [v.camera for v in model.views],
                          [v.keypoints for v in model.views], model.points.xyz, model.points.tracks, refine_focal)
    adjusted = Scene(cams, [View(v.name, None, v.camera, *out[k]) for k, v in enumerate(model.views)])
    return compare_poses(adjusted, ref)
