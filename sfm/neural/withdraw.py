"""What the model takes back: views whose poses the votes (sfm/neural/vote.py) contradict, views left
standing only on withdrawn ones, points some view sees too far from their keypoint, and observations
too far from their track's point.

Views are withdrawn (withdraw_*: the pose goes, the view may be registered again); points are
dropped (drop_*: the position goes, the track stays); observations are unlinked (the keypoint leaves
its track).
"""

from __future__ import annotations

import logging

import numpy as np

from sfm.geometry.triangulation import reprojection_error
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.state import Reconstruction, track_errors
from sfm.neural.triangulate import triangulate_new
from sfm.neural.vote import (
    epipolar_support,
    is_voting_pair,
    track_contradicted,
    track_support,
    voting_neighbours,
)

log = logging.getLogger("fields")


def withdraw_and_retriangulate(rec: Reconstruction, opts: NeuralSfMOptions) -> list[int]:
    """withdraw_contradicted_views, then the tracks of the views kept triangulated again where they
    lost their points; returns the withdrawn views that may be tried again (withdrawn at most
    max_withdrawals times)."""
    dropped = withdraw_contradicted_views(rec, opts)
    if dropped:
        views = list(rec.poses)
        for i, v in enumerate(views):  # each pair once: a second try of a pair fails as the first did
            triangulate_new(rec, v, opts, views[i + 1:])
    return [w for w in dropped if rec.reports[w].dropped <= opts.max_withdrawals]


def withdraw_contradicted_views(rec: Reconstruction, opts: NeuralSfMOptions) -> list[int]:
    """Withdraw the poses that contradict most of their registered neighbours' matches (a view placed
    through a wrong pair that later views outvote), worst first, then the views left standing only on
    withdrawn ones; pairs still contradicting two kept poses become bad pairs. Points left with fewer
    than two registered views lose their position. Returns the withdrawn views (the gauge's stay).

    Each neighbour's ballot weighs as many as the pair's matches: a pose placed through look-alike
    pairs of few matches can agree with as many neighbours as it contradicts, while the right pairs it
    contradicts have many more matches; counted by neighbours, the tie would keep it. A pose the
    tracks contradict (track_support) is withdrawn too, whatever the vote."""
    agree: dict[tuple[int, int], bool] = {}
    for v in rec.poses:
        for w, f in epipolar_support(rec, v, rec.poses[v], opts).items():
            agree[(min(v, w), max(v, w))] = f >= opts.epipolar_agree
    dropped = []
    while True:
        score, outvoted = {}, set()
        tracks = track_support(rec, opts)
        for v in rec.poses:
            ballots = {p: rec.corr.num_matches(*p) for p in agree if v in p}
            against = sum(n for p, n in ballots.items() if not agree[p])
            if v not in rec.gauge and ballots and 2 * against > sum(ballots.values()):
                score[v] = against / sum(ballots.values())
                outvoted.add(v)
            if v not in rec.gauge and track_contradicted(tracks[v], opts):
                score[v] = max(score.get(v, 0.0), 1.0 - tracks[v][1] / tracks[v][0])
        if not score:
            break
        v = max(score, key=score.get)
        withdraw_view(rec, v, "its pose contradicted the matches with most registered neighbours (epipolar check)"
                      if v in outvoted else f"under {opts.min_inlier_ratio:.0%} of the {tracks[v][0]} points other "
                      "views triangulate land on its pose (track check)")
        agree = {p: ok for p, ok in agree.items() if v not in p}
        dropped.append(v)
    dropped += withdraw_unsupported_views(rec, dropped, opts)
    rec.bad_pairs |= {p for p, ok in agree.items() if not ok}
    if dropped:
        seen = np.zeros(len(rec.tracks), np.int64)
        for w in rec.poses:
            tid = rec.track_of[w]
            np.add.at(seen, tid[tid >= 0], 1)
        rec.xyz[seen < 2] = np.nan
        log.debug(f"withdrew views {dropped}; bad pairs {sorted(rec.bad_pairs)}; gauge {rec.gauge}")
    return dropped


def withdraw_unsupported_views(rec: Reconstruction, dropped: list[int], opts: NeuralSfMOptions) -> list[int]:
    """Withdraw the views whose every voting neighbour was withdrawn, until none is left: a view placed
    only relative to wrongly placed ones is itself unsupported (a look-alike pair the start placed
    together, matched only to each other: once one is withdrawn, PnP on the other's points would place
    it again, wrongly). Returns the views withdrawn."""
    gone, out = set(dropped), []
    while True:
        lost = [v for v in rec.poses if v not in rec.gauge and not voting_neighbours(rec, v, opts)
                and any(is_voting_pair(rec, v, w, opts) for w in gone)]
        if not lost:
            return out
        for v in lost:
            withdraw_view(rec, v, "the views it was placed against were withdrawn")
        gone |= set(lost)
        out += lost


def withdraw_view(rec: Reconstruction, v: int, reason: str) -> None:
    """Take v's pose out of the model (it may be registered again) and say why in its report."""
    del rec.poses[v]
    rep = rec.reports[v]
    rep.registered, rep.dropped, rep.reason = False, rep.dropped + 1, reason


def drop_far_points(rec: Reconstruction, max_error_px: float) -> int:
    """Points that some registered view sees more than max_error_px from its keypoint, or behind it,
    dropped, as the neural BA drops them: the classical BA moves free points, and its robust loss let an
    outlier's point end behind a view that observes it (an infinite mean reprojection error); returns
    how many."""
    far = [t[e > max_error_px] for t, e in (track_errors(rec, v) for v in rec.poses)]
    far_tracks = np.unique(np.concatenate([np.zeros(0, np.int64)] + far))
    rec.xyz[far_tracks] = np.nan
    return len(far_tracks)


MIN_KEPT = 3  # placed views that must still see a point whose track lost an observation


def unlink_far_observations(rec: Reconstruction, max_error_px: float) -> int:
    """Observations more than max_error_px from their track's point (or behind the view) taken out of
    their tracks, in the views most of whose observations fit (a misplaced view keeps its tracks, for
    the vote and PnP); a point that lost one stays while MIN_KEPT placed views still see it (a track
    with a wrong match is suspect: keeping its point while two views saw it did worse). Returns how
    many were taken out. For the global start: GLOMAP's tracks keep an observation only where it fits,
    ours join every match, and one misfit observation would cost the whole point in the first bundle
    adjustment."""
    has, unlinked, touched = rec.has_point(), 0, set()
    for v in rec.poses:
        tid = rec.track_of[v]
        k = np.flatnonzero((tid >= 0) & has[np.maximum(tid, 0)])
        err = reprojection_error(rec.cameras[v].K, *rec.poses[v], rec.xyz[tid[k]], rec.corr.keypoints[v][k])
        if not len(k) or np.median(err) > max_error_px:
            continue
        for kp in k[err > max_error_px]:
            track = rec.tracks[tid[kp]]
            rec.tracks[tid[kp]] = track[~((track[:, 0] == v) & (track[:, 1] == kp))]
            touched.add(int(tid[kp]))
            tid[kp] = -1
            unlinked += 1
    registered = list(rec.poses)
    short = [t for t in touched if np.isin(rec.tracks[t][:, 0], registered).sum() < MIN_KEPT]
    rec.xyz[short] = np.nan
    return unlinked
