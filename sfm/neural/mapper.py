"""Neural incremental SfM on the SDF's zero level set (Level-S2fM), without per-scene knobs and
without aborting on a view that fails to register. This module is the loop; each step lives in its
own module:

1. the start (sfm/neural/start.py): the views GLOMAP (pycolmap's global mapper) places at once by
   rotation averaging over all pairs, or a two-view init (most well-triangulated points at a wide
   enough angle); the frame scaled so the points fill the SDF's cube, and an SDF fitted to them
   (sfm/neural/surface.py);
2. next view (sfm/neural/register.py): the most 2D-3D correspondences to points near the zero level
   set, PnP-RANSAC, the pose checked by its neighbours' vote (sfm/neural/vote.py);
3. new tracks triangulated onto the SDF (sfm/neural/triangulate.py: sphere tracing both rays, or DLT
   snapped onto it; the DLT point where it reprojects better), rejected by reprojection error and |sdf|;
4. neural bundle adjustment of poses and SDF (sfm/neural/refine.py, sfm/neural/bundle_adjustment.py),
   locally after each view and over everything periodically and at the end;
5. a view that fails is retried after the next success, and after the last vote withdraws views
   (sfm/neural/withdraw.py); one that only its neighbours' vote refuses is registered on trial (loop
   closure, sfm/neural/loop.py); the views still out are tried once more after the final rounds; a
   view that never registers is reported (sfm/neural/report.py);
6. the last word a Ceres bundle adjustment of the points the neural one kept
   (sfm/neural/classical_polish.py).
Photos without a focal length are solved twice, the second time with the first's focal length
(sfm/neural/self_calibration.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from fields.scene import Scene
from sfm.frontend.extract import FrontEndOptions, match_again
from sfm.frontend.tracks import Correspondences, match_views, read_database
from sfm.neural.loop import close_loop
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.refine import (
    final_rounds,
    focal_now,
    neighbours,
    polish_and_refit,
    run_ba,
)
from sfm.neural.register import register_next
from sfm.neural.report import finish_reports, to_scene
from sfm.neural.self_calibration import calibrated_inputs
from sfm.neural.start import gauge_views, start_model
from sfm.neural.state import (
    Reconstruction,
    SfMSnapshot,
    ViewReport,
    mean_error,
    snapshot,
)
from sfm.neural.triangulate import triangulate_new
from sfm.neural.withdraw import withdraw_and_retriangulate
from sfm.report import name_list

log = logging.getLogger("fields")


def neural_sfm(scene: Scene, image_dir: Path, work: Path, front: FrontEndOptions | None = None,
               opts: NeuralSfMOptions | None = None, progress=None,
               on_update: Callable[[SfMSnapshot], None] | None = None) -> tuple[Scene, dict[int, ViewReport]]:
    """Poses and points for scene's views; unregistered views keep no pose and are reported.
    `progress(registered, total)` and `on_update(SfMSnapshot)` follow the model as it grows."""
    front, opts = front or FrontEndOptions(), opts or NeuralSfMOptions()
    # the final rounds' target in pixels of the images SIFT saw: on photos shrunk for SIFT the keypoints'
    # noise is larger in full-size pixels, and a full-size pixel target would run every round for nothing
    opts = replace(opts, target_error_px=opts.target_error_px * detection_scale(scene, front))
    t0 = time.time()
    corr, features = match_views(scene, image_dir, work, front)
    result, reports = grow(corr, scene, features.folder, work, opts, progress, on_update, t0)
    calibrated = calibrated_inputs(scene, result)
    if calibrated is None:
        return result, reports
    log.info(f"sfm: the focal length was a guess ({scene.cameras[0].K[0, 0]:.0f} px) and came out "
             f"{calibrated.cameras[0].K[0, 0]:.0f} px; matching and solving again with it")
    match_again(calibrated, work / "database.db", front, features)
    corr = read_database(work / "database.db", calibrated)
    return grow(corr, calibrated, features.folder, work, opts, progress, on_update, t0)


def detection_scale(scene: Scene, front: FrontEndOptions) -> float:
    """Image pixels per pixel of the copies SIFT ran on (photos over max_image_size are shrunk for it)."""
    return max(1.0, max(max(c.width, c.height) for c in scene.cameras) / front.max_image_size)


def grow(corr: Correspondences, scene: Scene, feature_dir: Path, work: Path, opts: NeuralSfMOptions, progress=None,
         on_update: Callable[[SfMSnapshot], None] | None = None,
         t0: float | None = None) -> tuple[Scene, dict[int, ViewReport]]:
    """Steps 1-6 on the verified matches of work/database.db (neural_sfm after its front end)."""
    emit = (lambda stage: on_update(snapshot(rec, stage))) if on_update else (lambda stage: None)  # noqa: E731
    t0 = time.time() if t0 is None else t0
    # 1. the start, its gauge and a global bundle adjustment
    rec, stage = start_model(corr, scene, work / "database.db", feature_dir, work, opts)
    if stage == "global start" and set(rec.camera_index) <= {rec.camera_index[v] for v in rec.poses}:
        # GLOMAP's BA refined every camera's focal length over all its views, so it stays: refined again,
        # it came out no better, and with separate fx and fy it drifted
        opts = replace(opts, refine_focal=False)
    rec.gauge = gauge_views(rec)
    run_ba(rec, list(rec.poses), opts.global_steps, opts, refine_focal=focal_now(rec, opts))
    log.info(f"sfm: {stage}: {name_list([scene.views[v].name for v in rec.poses])} "
             f"({int(rec.has_point().sum())} points) in {time.time() - t0:.0f} s")
    emit(stage)
    # a view the global start placed against most of its neighbours' matches is registered again by PnP
    retry = withdraw_and_retriangulate(rec, opts) if stage == "global start" else []
    pending = [v for v in range(len(scene.views)) if v not in rec.poses and v not in retry] + retry
    since_global = 0

    def placed(v: int) -> list[int]:
        """The model refined around newly registered v; the views a periodic global BA withdraws."""
        nonlocal since_global
        # 3. its new points, 4. a local BA, and every global_every views a global one and the vote (5)
        triangulate_new(rec, v, opts)
        run_ba(rec, neighbours(rec, v, opts.local_views), opts.local_steps, opts)
        emit(f"registered {scene.views[v].name}")
        since_global, retry = since_global + 1, []
        if since_global >= opts.global_every:
            run_ba(rec, list(rec.poses), opts.global_steps, opts, refine_focal=focal_now(rec, opts))
            if opts.classical_polish:
                polish_and_refit(rec, opts)
            retry = withdraw_and_retriangulate(rec, opts)
            emit("global bundle adjustment")
            since_global = 0
        if progress:
            progress(len(rec.poses), len(scene.views))
        return retry

    # 2. and 5. the next views, one at a time, retried after the vote and by loop closure
    register_pending(rec, pending, opts, placed)
    # 4. the final global rounds
    err = final_rounds(rec, opts, emit)
    # the final rounds bring the model closer to right (a twisted ring closed further): the views left out
    # are tried once more (PnP may now find enough inliers where it found too few before)
    left = [v for v in range(len(scene.views))
            if v not in rec.poses and rec.reports.get(v, ViewReport()).dropped <= opts.max_withdrawals]
    if left:
        before = set(rec.poses)
        register_pending(rec, left, opts, placed)
        if set(rec.poses) != before:
            err = final_rounds(rec, opts, emit)
    if opts.classical_polish:
        # 6. the neural BA (Adam, float32) decides which points stay, on the level set, but leaves the poses
        # a few hundredths of a degree short of the optimum, differently for each seed: the last word is
        # Ceres's on the points it kept
        polish_and_refit(rec, opts, refit=False)
        err = mean_error(rec)
        emit("final bundle adjustment")
    finish_reports(rec, opts)
    log.info(f"sfm: registered {len(rec.poses)}/{len(scene.views)} views, {int(rec.has_point().sum())} points, "
             f"mean reprojection error {err:.2f} px, {time.time() - t0:.0f} s")
    return to_scene(rec, scene), rec.reports


def register_pending(rec: Reconstruction, pending: list[int], opts: NeuralSfMOptions,
                     placed: Callable[[int], list[int]]) -> None:
    """Steps 2 and 5: the pending views registered one at a time (register_next), placed(v) after
    each (it refines the model and returns views to try again). When none of them registers, or none
    is left, the views the vote withdraws (withdraw_and_retriangulate) are tried again, until it
    withdraws none that may be: the last views placed may outvote one placed before them, which would
    otherwise never be tried again. When the vote withdraws none either, a view only the vote refuses
    is registered on trial (close_loop)."""
    pending = list(pending)
    while True:
        if not pending:
            pending = withdraw_and_retriangulate(rec, opts)
            if not pending:
                return
        v = register_next(rec, pending, opts)
        if v is None:
            retry = withdraw_and_retriangulate(rec, opts)
            if retry:
                pending += retry
                continue
            v = close_loop(rec, pending, opts)
            if v is None:
                return
        pending.remove(v)
        pending += placed(v)
