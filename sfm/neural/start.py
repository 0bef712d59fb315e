"""The two starts of the neural SfM, and the gauge.

The global start: GLOMAP (pycolmap's global mapper, on the same matches) places every view it can
at once, by robust rotation averaging over all verified pairs and then global positioning; the
neural pipeline takes over from there (the SDF fitted to the points, neural bundle adjustment, the
views it left out registered one by one). Why not grow from one pair: on a sparse match graph of a
symmetric object, a look-alike pair of views seen from opposite sides can match by the hundred and
agree with its neighbours, so PnP and the epipolar vote place views wrongly through it; the loops of
the whole graph outvote it in rotation averaging.

The pair start: the best two-view pair's relative pose and points (the fallback when GLOMAP places
fewer than 3 views).

Either way the points are moved into the SDF's cube (centred, their 90th-percentile radius at 0.5)
and a fresh SDF is fitted to them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fields.errors import FieldsError
from fields.scene import Camera, Scene
from sfm.colmap import run_mapper
from sfm.frontend.tracks import Correspondences, build_tracks
from sfm.geometry.two_view import initial_pair
from sfm.io.colmap_model import scene_from_reconstruction
from sfm.neural.options import SFM_STARTS, NeuralSfMOptions
from sfm.neural.state import Reconstruction, ViewReport, track_lookup
from sfm.neural.surface import fit_sdf_to_points, make_sdf
from sfm.neural.withdraw import unlink_far_observations
from sfm.report import name_list

log = logging.getLogger("fields")


def start_model(corr: Correspondences, scene: Scene, database: Path, feature_dir: Path, work: Path,
                opts: NeuralSfMOptions) -> tuple[Reconstruction, str]:
    """The model to grow from and how it started: "global start" (GLOMAP's views, when it places 3 or
    more) or "initial pair"."""
    if opts.start not in SFM_STARTS:
        raise FieldsError(f"sfm start must be one of {', '.join(SFM_STARTS)}, not {opts.start!r}")
    if opts.start == "global":
        sol = solve_globally(database, feature_dir, work, scene, opts.seed)
        if sol is not None:
            return start_globally(corr, scene, sol, opts), "global start"
        log.info("sfm: the global mapper placed fewer than 3 views; growing the model from one pair instead")
    return start_from_pair(corr, scene, opts), "initial pair"


def start_globally(corr: Correspondences, scene: Scene, sol: GlobalSolution, opts: NeuralSfMOptions) -> Reconstruction:
    """The global start: GLOMAP's poses and cameras, each track's point from the GLOMAP point one of
    its keypoints observes, all in the SDF's cube, and the SDF fitted to them."""
    rec = empty_reconstruction(corr, scene, opts)
    for tid, track in enumerate(rec.tracks):
        for v, k in track:
            if (p := sol.point_of.get((int(v), int(k)))) is not None:
                rec.xyz[tid] = sol.xyz[p]
                break
    has = rec.has_point()
    centre, s = unit_frame(rec.xyz[has])
    rec.xyz[has] = s * (rec.xyz[has] - centre)
    rec.xyz[has & (np.abs(rec.xyz).max(1) >= 1.0)] = np.nan  # outside the SDF's cube: no level set there
    has = rec.has_point()
    for v, (R, t) in sol.poses.items():
        rec.poses[v] = (R, s * (R @ centre + t))
    for v, cam in sol.cameras.items():
        for w, c in enumerate(rec.camera_index):
            if c == rec.camera_index[v]:
                rec.cameras[w] = cam
    unlink_far_observations(rec, opts.max_error_px)
    has = rec.has_point()
    for v in sol.poses:
        tid = rec.track_of[v]
        rec.reports[v] = ViewReport(True, int(((tid >= 0) & has[np.maximum(tid, 0)]).sum()))
    fit_sdf_to_points(rec.sdf, rec.xyz[has], opts.init_fit_steps, opts.seed)
    return rec


def start_from_pair(corr: Correspondences, scene: Scene, opts: NeuralSfMOptions) -> Reconstruction:
    """The two-view start: the best pair's relative pose and points, the SDF fitted to them."""
    cam = scene.camera_of(0)
    tv = initial_pair(cam, corr, seed=opts.seed)
    if tv is None or int(tv.good.sum()) < 30:
        raise FieldsError("no image pair with enough well-triangulated matches to start SfM; no view could be "
                          f"registered ({name_list([v.name for v in scene.views])}): the photos may not overlap")
    rec = empty_reconstruction(corr, scene, opts)
    centre, s = unit_frame(tv.points[tv.good])
    rec.poses[tv.i] = (np.eye(3), s * centre)
    rec.poses[tv.j] = (tv.R, s * (tv.R @ centre + tv.t))
    t1 = rec.track_of[tv.i][tv.matches[:, 0]]
    t2 = rec.track_of[tv.j][tv.matches[:, 1]]
    ok = tv.good & (t1 >= 0) & (t1 == t2)
    rec.xyz[t1[ok]] = s * (tv.points[ok] - centre)
    for v in (tv.i, tv.j):
        rec.reports[v] = ViewReport(True, int(ok.sum()))
    fit_sdf_to_points(rec.sdf, rec.xyz[rec.has_point()], opts.init_fit_steps, opts.seed)
    return rec


def empty_reconstruction(corr: Correspondences, scene: Scene, opts: NeuralSfMOptions) -> Reconstruction:
    """No pose and no point yet: the tracks of the verified matches, the input cameras, a fresh SDF."""
    tracks = build_tracks(corr)
    cams = [scene.camera_of(i) for i in range(len(scene.views))]
    rec = Reconstruction(cams, tracks, track_lookup(corr, tracks), corr, make_sdf(opts.seed),
                         camera_index=[v.camera for v in scene.views])
    rec.xyz = np.full((len(tracks), 3), np.nan)
    return rec


def unit_frame(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, scale) of the frame in which the points sit in the SDF's cube: centred at their median,
    their 90th-percentile radius at 0.5. A world-to-camera pose (R, t) becomes (R, s (R centre + t))."""
    centre = np.median(points, axis=0)
    return centre, 0.5 / max(float(np.percentile(np.linalg.norm(points - centre, axis=1), 90)), 1e-9)


def gauge_views(rec: Reconstruction) -> tuple[int, int]:
    """The two posed views that fix the gauge and are never withdrawn: the one with the most matches
    to the other posed views and its strongest partner. Not the first by index: the start may misplace
    that one (e.g. with a look-alike partner), and as the gauge it could never be withdrawn."""
    posed = list(rec.poses)
    first = max(posed, key=lambda v: sum(rec.corr.num_matches(v, w) for w in posed))
    return first, max((w for w in posed if w != first), key=lambda w: rec.corr.num_matches(first, w))


@dataclass
class GlobalSolution:
    """GLOMAP's model in the scene's view indices."""

    poses: dict[int, tuple[np.ndarray, np.ndarray]]  # view -> world-to-camera (R, t)
    cameras: dict[int, Camera]  # view -> its refined camera
    xyz: np.ndarray  # (P, 3) points
    point_of: dict[tuple[int, int], int]  # (view, keypoint index) -> the point it observes


def solve_globally(database: Path, image_dir: Path, work: Path, scene: Scene, seed: int = 0,
                   min_views: int = 3) -> GlobalSolution | None:
    """GLOMAP's largest model on a matched database (keypoint indices are the database's), or None
    when it places fewer than min_views of the scene's views."""
    models = run_mapper(database, image_dir, work / "global", "global", seed)
    if not models:
        return None
    model = scene_from_reconstruction(max(models.values(), key=lambda r: r.num_reg_images()), None)
    view_of = {Path(v.path).name: i for i, v in enumerate(scene.views) if v.path is not None}
    ours = [view_of.get(v.name) for v in model.views]
    poses, cameras = {}, {}
    for k, v in enumerate(model.views):
        if v.registered and ours[k] is not None:
            poses[ours[k]] = (v.R, v.t)
            cameras[ours[k]] = model.cameras[v.camera]
    if len(poses) < min_views:
        return None
    point_of = {}
    for p, track in enumerate(model.points.tracks):
        for k, kp in track:
            if ours[k] is not None:
                point_of[(ours[k], int(kp))] = p
    return GlobalSolution(poses, cameras, model.points.xyz, point_of)
