"""New points: the tracks two registered views share, triangulated onto the SDF's surface."""

from __future__ import annotations

import numpy as np

from sfm.geometry.triangulation import reprojection_error, triangulate_on_sdf
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.state import Reconstruction


def triangulate_new(rec: Reconstruction, v: int, opts: NeuralSfMOptions, partners: list[int] | None = None) -> int:
    """Points for tracks seen by v and another registered view (of `partners`, all by default) that
    have none yet; returns how many."""
    tid = rec.track_of[v]
    has = rec.has_point()
    added = 0
    for w in list(rec.poses) if partners is None else partners:
        m = rec.pair_matches(v, w) if w != v else None
        if m is None:
            continue
        kv, kw = m
        t = tid[kv]
        sel = (t >= 0) & ~has[np.maximum(t, 0)] & (rec.track_of[w][kw] == t)
        if not sel.any():
            continue
        xv, xw = rec.corr.keypoints[v][kv[sel]], rec.corr.keypoints[w][kw[sel]]
        X, residual = triangulate_on_sdf(rec.sdf.sdf, rec.cameras[v].K, rec.poses[v], rec.poses[w], xv, xw)
        e1 = reprojection_error(rec.cameras[v].K, *rec.poses[v], X, xv)
        e2 = reprojection_error(rec.cameras[w].K, *rec.poses[w], X, xw)
        ok = (e1 < opts.max_error_px) & (e2 < opts.max_error_px) & (np.abs(X) < 1.0).all(1)
        ok &= residual < opts.tau * 2
        rec.xyz[t[sel][ok]] = X[ok]
        has[t[sel][ok]] = True
        added += int(ok.sum())
    return added
