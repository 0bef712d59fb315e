"""Bundle adjustment as the mapper runs it: the neural BA over a set of views
(sfm/neural/bundle_adjustment.py), the local window around a new view, the Ceres polish with the SDF
refitted to the moved points (sfm/neural/classical_polish.py), and the final global rounds."""

from __future__ import annotations

from typing import Callable

import numpy as np

from sfm.neural.bundle_adjustment import BAProblem, bundle_adjust
from sfm.neural.classical_polish import polish
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.state import Reconstruction, observations
from sfm.neural.surface import fit_sdf_to_points
from sfm.neural.withdraw import drop_far_points


def run_ba(rec: Reconstruction, views: list[int], steps: int, opts: NeuralSfMOptions,
           refine_focal: bool = False) -> float:
    """Neural BA over `views` (the gauge held) and the points they see, with the focal lengths when
    asked; writes poses, cameras and snapped points back, drops points that reproject badly or left
    the level set; returns the mean reprojection error."""
    obs_v, obs_t, obs_x = observations(rec, views)
    if len(obs_t) == 0:
        return float("nan")
    pts, pidx = np.unique(obs_t, return_inverse=True)
    vidx = {v: k for k, v in enumerate(views)}
    held, scale_view = rec.gauge
    t_mask = np.ones((len(views), 3))
    if scale_view in vidx:
        t_mask[vidx[scale_view], int(np.argmax(np.abs(rec.poses[scale_view][1])))] = 0.0
    prob = BAProblem(np.stack([rec.cameras[v].K for v in views]), np.stack([rec.poses[v][0] for v in views]),
                     np.stack([rec.poses[v][1] for v in views]), rec.xyz[pts],
                     np.array([vidx[v] for v in obs_v]), pidx, obs_x,
                     np.array([v != held for v in views]), t_mask,
                     np.array([rec.camera_index[v] for v in views]) if refine_focal else None)
    res = bundle_adjust(rec.sdf, prob, steps, opts.tau, seed=opts.seed)
    for k, v in enumerate(views):
        rec.poses[v] = (res.R[k], res.t[k])
    if refine_focal:
        for c, f in enumerate(res.focal_scale):
            rec.scale_focal(c, float(f))
    rec.xyz[pts] = res.points
    worst = np.zeros(len(pts))
    np.maximum.at(worst, pidx, res.errors)
    bad = (worst > opts.max_error_px) | (res.residual > opts.tau) | ~np.isfinite(res.points).all(1)
    rec.xyz[pts[bad]] = np.nan
    good_obs = ~bad[pidx]
    return float(res.errors[good_obs].mean()) if good_obs.any() else float("nan")


def focal_now(rec: Reconstruction, opts: NeuralSfMOptions) -> bool:
    """Whether this global bundle adjustment refines the focal lengths."""
    return opts.refine_focal and len(rec.poses) >= opts.refine_focal_from


def neighbours(rec: Reconstruction, v: int, n: int) -> list[int]:
    """The local bundle adjustment's n views: v and the registered views sharing the most matches with it."""
    others = sorted((w for w in rec.poses if w != v), key=lambda w: -rec.corr.num_matches(v, w))
    return [v] + others[: n - 1]


def polish_and_refit(rec: Reconstruction, opts: NeuralSfMOptions, refit: bool = True) -> None:
    """Classical BA over everything (sfm/neural/classical_polish.py), the points it leaves far from an
    observation dropped, then (unless this is the last step) the SDF refitted to the moved points."""
    has = np.flatnonzero(rec.has_point())
    if len(has) < 10 or len(rec.poses) < 2:
        return
    n_cams = max(rec.camera_index) + 1
    shared = [rec.cameras[rec.camera_index.index(c)] if c in rec.camera_index else None for c in range(n_cams)]
    registered = set(rec.poses)
    tracks = [rec.tracks[t][np.isin(rec.tracks[t][:, 0], list(registered))] for t in has]
    cams, poses, xyz = polish(shared, rec.poses, rec.camera_index, rec.corr.keypoints, rec.xyz[has], tracks,
                              focal_now(rec, opts))
    rec.poses.update(poses)
    rec.xyz[has] = xyz
    for v, c in enumerate(rec.camera_index):
        rec.cameras[v] = cams[c]
    drop_far_points(rec, opts.max_error_px)
    if refit:
        xyz = rec.xyz[rec.has_point()]
        fit_sdf_to_points(rec.sdf, xyz[np.abs(xyz).max(1) < 1.0], opts.refit_steps, opts.seed, lr=1e-3)


def final_rounds(rec: Reconstruction, opts: NeuralSfMOptions, emit: Callable[[str], None]) -> float:
    """Global rounds (Ceres polish and SDF refit, then neural BA) until the mean reprojection error is
    within target_error_px, at most final_rounds of them; returns that error."""
    err = float("nan")
    for _ in range(opts.final_rounds):
        if opts.classical_polish:
            polish_and_refit(rec, opts)
        err = run_ba(rec, list(rec.poses), opts.global_steps, opts, refine_focal=focal_now(rec, opts))
        emit("final bundle adjustment")
        if err <= opts.target_error_px:
            break
    return err
