"""Next-view registration: PnP-RANSAC on 2D-3D correspondences to points on the SDF's zero level set
(the tracks' points near it, then points traced onto it from the registered views' rays), checked by
the neighbours' epipolar vote."""

from __future__ import annotations

import logging
from typing import Iterator

import numpy as np

from sfm.geometry.pnp import PnPResult, estimate_pose
from sfm.geometry.triangulation import trace_pixels
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.state import Reconstruction, ViewReport
from sfm.neural.surface import near_level_set
from sfm.neural.vote import voting_neighbours, why_outvoted

log = logging.getLogger("fields")


def register_next(rec: Reconstruction, candidates: list[int], opts: NeuralSfMOptions) -> int | None:
    """Try candidates by decreasing level-set correspondences; the first view PnP registers, or None.

    PnP uses the tracks' points near the zero level set; when their pose fails checked_pose and they
    are fewer than 4 min_inliers, points on the SDF's surface found by tracing the matched keypoints'
    rays from registered neighbours are added (tried second: a long lens magnifies the SDF's misfit,
    so the traced points can land pixels off and outnumber the tracks' points that place the view
    right). When that fails too, the points traced from one neighbour at a time are tried, the
    best-matched first: a look-alike neighbour's points can outnumber the right ones and give PnP its
    largest consensus over all of them. Views that only one registered neighbour can vote on wait
    until no view with more voters registers (a wrong pair, e.g. from symmetric structure, is then
    outvoted instead of placing the view).
    """
    near = near_level_set(rec, opts.tau)
    voters = {v: voting_neighbours(rec, v, opts) for v in candidates}
    ranked = sorted(candidates, key=lambda v: -count_level_set_matches(rec, v, near))
    for v in [v for v in ranked if len(voters[v]) >= 2] + [v for v in ranked if len(voters[v]) < 2]:
        rep = rec.reports.setdefault(v, ViewReport())
        rep.attempts += 1
        res, why = None, ""
        for x, X, source in surface_points(rec, v, near, opts):
            res, why = checked_pose(rec, v, x, X, source, opts)
            if res is not None:
                break
        if res is None:
            for x, X, source in points_by_neighbour(rec, v, voters[v]):
                res, _ = checked_pose(rec, v, x, X, source, opts)
                if res is not None:
                    break
        if res is None:
            rep.reason = why
            continue
        place_view(rec, v, res)
        log.debug(f"registered view {v} ({res.num_inliers} PnP inliers)")
        return v
    return None


def count_level_set_matches(rec: Reconstruction, v: int, near: np.ndarray) -> int:
    """How many of v's keypoints are in tracks whose point is near the zero level set (near_level_set)."""
    tid = rec.track_of[v]
    return int(((tid >= 0) & near[np.maximum(tid, 0)]).sum())


def surface_points(rec: Reconstruction, v: int, near: np.ndarray,
                   opts: NeuralSfMOptions) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """2D-3D correspondences for view v, in the order PnP tries them: its tracks' points near the zero
    level set, then, when those are fewer than 4 min_inliers, with the points traced onto the surface
    from the registered views' rays added (register_next says why)."""
    tid = rec.track_of[v]
    k = np.flatnonzero((tid >= 0) & near[np.maximum(tid, 0)])
    x, X = rec.corr.keypoints[v][k], rec.xyz[tid[k]]
    yield x, X, "points on the surface"
    if len(k) < 4 * opts.min_inliers:
        x2, X2 = surface_correspondences(rec, v)
        yield np.concatenate([x, x2]), np.concatenate([X, X2]), "points on or traced onto the surface"


def points_by_neighbour(rec: Reconstruction, v: int,
                        voters: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """The points traced onto the surface from one voting neighbour at a time, the best-matched first;
    none when fewer than two neighbours vote (register_next says why)."""
    if len(voters) >= 2:
        for w in sorted(voters, key=lambda w: -rec.corr.num_matches(v, w)):
            yield *traced_from(rec, v, w), f"points traced from view {w}"


def surface_correspondences(rec: Reconstruction, v: int) -> tuple[np.ndarray, np.ndarray]:
    """2D-3D correspondences for view v through the SDF, from every registered view (traced_from). On
    sparse match graphs (a ring of views, two-view tracks) this is where the next view finds its
    points: they are not triangulated yet, but the surface fitted to the neighbours' points already
    holds them."""
    found = [traced_from(rec, v, w) for w in rec.poses]
    return (np.concatenate([np.zeros((0, 2))] + [x for x, _ in found]),
            np.concatenate([np.zeros((0, 3))] + [X for _, X in found]))


def traced_from(rec: Reconstruction, v: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """2D-3D correspondences for view v from registered view w: each match of v with w whose ray from
    w hits the SDF's surface gives that hit as the 3-D point."""
    m = rec.pair_matches(v, w)
    if m is None:
        return np.zeros((0, 2)), np.zeros((0, 3))
    kv, kw = m
    X, ok = trace_pixels(rec.sdf.sdf, rec.cameras[w].K, *rec.poses[w], rec.corr.keypoints[w][kw])
    return rec.corr.keypoints[v][kv[ok]], X[ok]


def pnp_pose(rec: Reconstruction, v: int, x: np.ndarray, X: np.ndarray, source: str,
             opts: NeuralSfMOptions) -> tuple[PnPResult | None, str]:
    """PnP's pose for view v from the correspondences (x, X), if it has at least min_inliers inliers
    and min_inlier_ratio of the correspondences (as COLMAP's mapper). Else None and why."""
    if len(x) < opts.min_inliers:
        return None, f"{len(x)} {source} (need {opts.min_inliers})"
    res = estimate_pose(x, X, rec.cameras[v], opts.pnp_error_px, opts.min_inliers, opts.seed)
    if res is None:
        return None, f"PnP found fewer than {opts.min_inliers} inliers among {len(x)} {source}"
    if res.num_inliers < opts.min_inlier_ratio * len(x):
        return None, f"PnP: only {res.num_inliers} inliers among {len(x)} {source}"
    return res, ""


def checked_pose(rec: Reconstruction, v: int, x: np.ndarray, X: np.ndarray, source: str,
                 opts: NeuralSfMOptions) -> tuple[PnPResult | None, str]:
    """PnP's pose for view v from the correspondences (x, X), if it passes pnp_pose's checks and is
    not outvoted by its neighbours. Else None and why."""
    res, why = pnp_pose(rec, v, x, X, source, opts)
    if res is not None:
        why = why_outvoted(rec, v, (res.R, res.t), opts)
    return (None, why) if why else (res, "")


def place_view(rec: Reconstruction, v: int, res: PnPResult) -> None:
    """Give v PnP's pose and say so in its report (withdraw_view undoes it)."""
    rec.poses[v] = (res.R, res.t)
    rep = rec.reports.setdefault(v, ViewReport())
    rep.registered, rep.inliers, rep.reason = True, res.num_inliers, ""
