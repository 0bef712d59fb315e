"""The pose error a model's own observations allow: its tracks triangulated with the reference
(ground-truth) poses and bundle adjusted from there, with the same robust Ceres BA as the neural
SfM's last step (sfm/neural/classical_polish.py).

A mapper whose error equals this floor has found the optimum of its keypoints and tracks; to do
better it needs better observations (more, or more precisely located), not a better optimiser.

The noise floor asks what kind of error the observations carry: the same tracks, seen exactly at the
reference poses plus independent Gaussian noise as large as the observations' own residuals there.
An observation floor far above it comes from errors shared by many observations (a biased detector,
a camera model that does not fit the photos, or a reference that disagrees with them), which more
or better-located keypoints cannot average away. The benchmark prints both beside each backend's
error (benchmarks/sfm_benchmark.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fields.scene import Points, Scene, View
from sfm.geometry.triangulation import reproject, reprojection_error, triangulate_track
from sfm.neural.classical_polish import polish
from sfm.pose_metrics import PoseReport, compare_poses


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


def _observed(model: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(view, keypoint, point) index of every track observation of model, in track order."""
    rows = [np.c_[t, np.full(len(t), p)] for p, t in enumerate(model.points.tracks)]
    obs = np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 3), np.int64)
    return obs[:, 0], obs[:, 1], obs[:, 2]


def _projections(model: Scene, cams: list, poses: dict[int, tuple[np.ndarray, np.ndarray]],
                 xyz: np.ndarray) -> np.ndarray:
    """(M, 2) pixels of every track observation of model's points xyz, seen at poses with cams."""
    w, _, p = _observed(model)
    uv = np.zeros((len(w), 2))
    for v in np.unique(w):
        sel = w == v
        uv[sel] = reproject(cams[model.views[v].camera].K, *poses[v], xyz[p[sel]])[0]
    return uv


def _with(model: Scene, values: np.ndarray) -> list[np.ndarray]:
    """model's keypoints with each track observation's replaced by the matching row of values (M, 2)."""
    w, k, _ = _observed(model)
    keypoints = [v.keypoints.copy() for v in model.views]
    for v in np.unique(w):
        keypoints[v][k[w == v]] = values[w == v]
    return keypoints


def floor_bundle(model: Scene, keypoints: list[np.ndarray], refine_focal: bool = False) -> tuple[Scene, np.ndarray]:
    """The floor's bundle adjustment of model (a floor_model) with the given keypoints per view, from
    its (reference) poses: the adjusted scene and the residuals (M, 2) of every track observation."""
    poses = {k: (v.R, v.t) for k, v in enumerate(model.views)}
    cams, out, xyz = polish(model.cameras, poses, [v.camera for v in model.views], keypoints,
                            model.points.xyz, model.points.tracks, refine_focal)
    adjusted = Scene(cams, [View(v.name, None, v.camera, *out[k]) for k, v in enumerate(model.views)])
    w, k, _ = _observed(model)
    observed = np.array([keypoints[v][i] for v, i in zip(w, k)], float).reshape(-1, 2)
    return adjusted, _projections(model, cams, out, xyz) - observed


def observation_floor(pred: Scene, ref: Scene, refine_focal: bool = False) -> PoseReport:
    """Errors against ref of the bundle adjustment of pred's observations started from ref's poses,
    with ref's intrinsics held (the floor when even the focal length is known exactly)."""
    model = floor_model(pred, ref)
    adjusted, _ = floor_bundle(model, [v.keypoints for v in model.views], refine_focal)
    return compare_poses(adjusted, ref)


@dataclass
class Floors:
    observation: PoseReport  # observation_floor's
    noise: PoseReport  # the noise floor's
    sigma: float  # px per axis, of the observations' residuals at the observation floor


def noise_floor(pred: Scene, ref: Scene, draws: int = 3, seed: int = 0) -> Floors:
    """The observation floor, and the floor's bundle adjustment when each of pred's track observations
    is replaced by the exact projection of its point at ref's poses plus iid Gaussian noise of sigma
    per axis; of `draws` noise draws, the one with the median rotation error (a single draw can vary
    by a factor of two). Sigma is the robust spread (1.4826 MAD) of the observations' residuals
    at the observation floor, corrected for the unknowns the adjustment fits (on a synthetic ring it
    reads 0.47 px for noise of 0.5 px: the Cauchy loss narrows the residuals a little more)."""
    model = floor_model(pred, ref)
    adjusted, residuals = floor_bundle(model, [v.keypoints for v in model.views])
    # the adjustment takes up 3 unknowns per point and 6 per view: the residuals are smaller than the noise
    unknowns = 3 * len(model.points.xyz) + 6 * len(model.views)
    dof = max(residuals.size - unknowns, 1) / max(residuals.size, 1)
    sigma = 1.4826 * float(np.median(np.abs(residuals))) / np.sqrt(dof) if residuals.size else 0.0
    exact = _projections(model, model.cameras, {k: (v.R, v.t) for k, v in enumerate(model.views)}, model.points.xyz)
    rng = np.random.default_rng(seed)
    reports = [compare_poses(floor_bundle(model, _with(model, exact + rng.normal(0.0, sigma, exact.shape)))[0], ref)
               for _ in range(draws)]
    noise = sorted(reports, key=lambda r: r.rotation_error_median_deg)[len(reports) // 2]
    return Floors(compare_poses(adjusted, ref), noise, sigma)
