"""Loop closure: a view that passes PnP's checks but loses its neighbours' vote, registered on trial.

The vote is only as right as the model: where the start left a ring of views open, its two halves
turned apart, the view that closes the ring contradicts one half whatever its pose, so it is never
registered and the ring never closes. Placed on trial, one bundle adjustment over everything can
close the ring; the view is kept when no pose then contradicts its neighbours, else the model is
put back.
"""

from __future__ import annotations

import logging
from itertools import chain

from sfm.geometry.pnp import PnPResult
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.refine import focal_now, polish_and_refit, run_ba
from sfm.neural.register import (
    place_view,
    pnp_pose,
    points_by_neighbour,
    surface_points,
)
from sfm.neural.state import ModelState, Reconstruction
from sfm.neural.surface import near_level_set
from sfm.neural.triangulate import triangulate_new
from sfm.neural.vote import voting_neighbours, why_outvoted
from sfm.neural.withdraw import withdraw_contradicted_views

log = logging.getLogger("fields")

LOOP_TRIALS = 3  # trial registrations per close_loop call: each costs a bundle adjustment over everything


def close_loop(rec: Reconstruction, candidates: list[int], opts: NeuralSfMOptions) -> int | None:
    """A view whose PnP pose passes its inlier checks but loses its neighbours' vote, registered on
    trial: placed, its tracks triangulated, everything adjusted once, and kept when no pose then
    contradicts its neighbours (why_outvoted, withdraw_contradicted_views); else the model is put back
    (ModelState). At most LOOP_TRIALS views are tried, the most PnP inliers first. Returns the view
    kept, or None."""
    near = near_level_set(rec, opts.tau)
    found: list[tuple[int, PnPResult]] = []
    for v in candidates:
        voters = voting_neighbours(rec, v, opts)
        if len(voters) < 2:
            continue
        sources = chain(surface_points(rec, v, near, opts), points_by_neighbour(rec, v, voters))
        res = next((p for x, X, source in sources if (p := pnp_pose(rec, v, x, X, source, opts)[0]) is not None),
                   None)
        if res is not None:
            found.append((v, res))
    for v, res in sorted(found, key=lambda f: -f[1].num_inliers)[:LOOP_TRIALS]:
        state = ModelState.of(rec)
        place_view(rec, v, res)
        triangulate_new(rec, v, opts)
        if opts.classical_polish:
            polish_and_refit(rec, opts)
        else:
            run_ba(rec, list(rec.poses), opts.global_steps, opts, refine_focal=focal_now(rec, opts))
        if not why_outvoted(rec, v, rec.poses[v], opts) and not withdraw_contradicted_views(rec, opts):
            log.debug(f"view {v} registered against its neighbours' vote; with it in, the bundle adjustment "
                      "left no pose contradicting its neighbours")
            return v
        state.restore(rec)
    return None
