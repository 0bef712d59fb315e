"""The votes on a view's pose: its registered neighbours' epipolar geometry (a pair votes with as many
matches as it has) and the points other views triangulate (the track check). They judge poses; the
withdrawals they lead to are in sfm/neural/withdraw.py."""

from __future__ import annotations

import logging

import numpy as np

from sfm.geometry.epipolar import fundamental, sampson_error
from sfm.geometry.triangulation import (
    projection,
    reprojection_error,
    triangulate_dlt,
    triangulation_angle_deg,
)
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.state import Reconstruction

log = logging.getLogger("fields")


def is_voting_pair(rec: Reconstruction, v: int, w: int, opts: NeuralSfMOptions) -> bool:
    """Whether views v and w share enough good matches for w's pose to vote on v's (and v's on w's)."""
    return w != v and (m := rec.pair_matches(v, w)) is not None and len(m[0]) >= opts.epipolar_min_matches


def voting_neighbours(rec: Reconstruction, v: int, opts: NeuralSfMOptions) -> list[int]:
    """Registered views sharing at least epipolar_min_matches good matches with v."""
    return [w for w in rec.poses if is_voting_pair(rec, v, w, opts)]


def epipolar_support(rec: Reconstruction, v: int, pose: tuple[np.ndarray, np.ndarray],
                     opts: NeuralSfMOptions) -> dict[int, float]:
    """For each registered neighbour with enough matches: the share of the pair's matches whose Sampson
    distance to the geometry of `pose` and the neighbour's pose is within max_error_px."""
    out = {}
    for w in voting_neighbours(rec, v, opts):
        m = rec.pair_matches(v, w)
        F = fundamental(rec.cameras[w].K, rec.poses[w], rec.cameras[v].K, pose)
        err = sampson_error(F, rec.corr.keypoints[w][m[1]], rec.corr.keypoints[v][m[0]])
        out[w] = float(np.mean(err < opts.max_error_px))
    return out


def why_outvoted(rec: Reconstruction, v: int, pose: tuple[np.ndarray, np.ndarray],
                 opts: NeuralSfMOptions) -> str:
    """Why `pose` for view v contradicts the epipolar geometry of most of its matched registered
    neighbours, each weighing as many as its matches (as in withdraw_contradicted_views); "" when it
    does not."""
    support = epipolar_support(rec, v, pose, opts)
    disagree = [w for w, f in support.items() if f < opts.epipolar_agree]
    against = sum(rec.corr.num_matches(v, w) for w in disagree)
    if support and 2 * against >= sum(rec.corr.num_matches(v, w) for w in support):
        return (f"PnP pose contradicts the matches with {len(disagree)} of {len(support)} registered "
                "neighbours (epipolar check)")
    log.debug(f"view {v}: epipolar support {({w: round(f, 2) for w, f in support.items()})}")
    return ""


def track_support(rec: Reconstruction, opts: NeuralSfMOptions,
                  min_angle_deg: float = 2.0) -> dict[int, tuple[int, int]]:
    """Per registered view v: (tracks checked, tracks fitting v's pose). A track is checked for v when
    two other registered views of it triangulate it (DLT) in front of both, within max_error_px in
    both and at least min_angle_deg apart; it fits when that point reprojects into v within
    max_error_px. Multi-view evidence the pairwise epipolar vote lacks: a long lens lets a mirrored
    pose (turned 180 deg about its baseline to one neighbour) fit that pair's epipolar geometry and
    outvote the others, but not the points that other views place."""
    v_of, k_of, t_of = observed_tracks(rec)
    count = np.bincount(t_of, minlength=len(rec.tracks))
    first = np.concatenate([[0], np.cumsum(count)[:-1]])[t_of]  # each observation's track's first one
    at = np.arange(len(t_of)) - first
    use = count[t_of] >= 3
    o1 = first + (at == 0)  # the track's first two observations other than this one (of two other
    o2 = first + np.where(at <= 1, 2, 1)  # views: build_tracks never puts two keypoints of one view in a track)
    v, w1, w2 = v_of[use], v_of[o1[use]], v_of[o2[use]]
    kv, k1, k2 = k_of[use], k_of[o1[use]], k_of[o2[use]]
    checked, X = np.zeros(len(v), bool), np.zeros((len(v), 3))
    key = w1 * len(rec.cameras) + w2
    order = np.argsort(key, kind="stable")
    for sel in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        if len(sel) == 0:
            continue
        a, b = int(w1[sel[0]]), int(w2[sel[0]])
        x1, x2 = rec.corr.keypoints[a][k1[sel]], rec.corr.keypoints[b][k2[sel]]
        (K1, p1), (K2, p2) = (rec.cameras[a].K, rec.poses[a]), (rec.cameras[b].K, rec.poses[b])
        X[sel] = triangulate_dlt(projection(K1, *p1), projection(K2, *p2), x1, x2)
        checked[sel] = ((reprojection_error(K1, *p1, X[sel], x1) < opts.max_error_px)
                        & (reprojection_error(K2, *p2, X[sel], x2) < opts.max_error_px)
                        & (triangulation_angle_deg(X[sel], -p1[0].T @ p1[1], -p2[0].T @ p2[1]) >= min_angle_deg))
    out = {}
    for u in rec.poses:
        on = np.flatnonzero((v == u) & checked)
        e = reprojection_error(rec.cameras[u].K, *rec.poses[u], X[on], rec.corr.keypoints[u][kv[on]])
        out[u] = (len(on), int((e < opts.max_error_px).sum()))
    return out


def observed_tracks(rec: Reconstruction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(view, keypoint, track) of every observation by a registered view, grouped by track."""
    flat = np.concatenate([np.zeros((0, 2), np.int64)] + rec.tracks)
    t_of = np.repeat(np.arange(len(rec.tracks)), [len(t) for t in rec.tracks])
    registered = np.zeros(len(rec.cameras), bool)
    registered[list(rec.poses)] = True
    keep = registered[flat[:, 0]]
    return flat[keep, 0], flat[keep, 1], t_of[keep]


def track_contradicted(support: tuple[int, int], opts: NeuralSfMOptions) -> bool:
    """Whether at least min_inliers checked tracks and under min_inlier_ratio of them fit (track_support)."""
    checked, fitting = support
    return checked >= opts.min_inliers and fitting < opts.min_inlier_ratio * checked
