"""Classical SfM through pycolmap: the front end's matched database, then its incremental (COLMAP) or
global (GLOMAP) mapper."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pycolmap

from fields.errors import FieldsError
from fields.scene import Scene, View
from sfm.frontend.extract import FrontEndOptions, extract_and_match, focal_unknown
from sfm.io.colmap_model import scene_from_reconstruction
from sfm.report import name_list

MAPPERS = ("incremental", "global")
GLOBAL_TRACKS_PER_VIEW = 300


def classical_sfm(scene: Scene, image_dir: Path, work: Path, opts: FrontEndOptions | None = None,
                  mapper: str = "incremental") -> Scene:
    """Poses for the views of `scene` from pycolmap: its incremental mapper (COLMAP) or its global one
    (GLOMAP: rotation averaging over the verified pairs, then global positioning and BA), largest
    model kept. Views the mapper could not register stay in the Scene without a pose.

    features="auto" means classic for the incremental mapper (the rich matches made its poses worse)
    and, as for the neural mapper, rich when some view has few strong pairs for the global one (whose
    robust rotation averaging outvotes the wrong pairs the rich matching adds).
    """
    if mapper not in MAPPERS:
        raise FieldsError(f"unknown pycolmap mapper {mapper!r} ({', '.join(MAPPERS)})")
    opts = opts or FrontEndOptions()
    if opts.features == "auto" and mapper == "incremental":
        opts = replace(opts, features="classic")
    work.mkdir(parents=True, exist_ok=True)
    database = work / "database.db"
    features = extract_and_match(scene, image_dir, database, opts)
    models = run_mapper(database, features.folder, work / "models", mapper, opts.seed)
    if not models:
        raise FieldsError(f"{image_dir}: SfM found no initial image pair; no view could be registered "
                          f"({name_list([v.name for v in scene.views])}): the photos may not overlap")
    best = max(models.values(), key=lambda r: r.num_reg_images())
    return merge_unregistered(scene, scene_from_reconstruction(best, image_dir))


def run_mapper(database: Path, image_dir: Path, out: Path, mapper: str,
               seed: int) -> dict[int, pycolmap.Reconstruction]:
    """pycolmap's incremental or global mapper on a matched database, its models written into a fresh `out`."""
    if mapper == "incremental":
        _empty_folder(out)
        pipeline = pycolmap.IncrementalPipelineOptions()
        pipeline.random_seed = seed
        pipeline.mapper.random_seed = seed
        pipeline.triangulation.random_seed = seed
        pipeline.ba_refine_principal_point = False
        return pycolmap.incremental_mapping(database, image_dir, out, pipeline)
    models = _global_mapping(database, image_dir, out, seed)
    if max((m.num_reg_images() for m in models.values()), default=0) < 3 and focal_unknown(database):
        # the guessed focal length was too far off to place views: GLOMAP's step for unknown intrinsics
        # (focal lengths from the pairs' fundamental matrices, the pairs' relative poses again), then retry
        pycolmap.calibrate_view_graph(database)
        models = _global_mapping(database, image_dir, out, seed)
    return models


def _global_mapping(database: Path, image_dir: Path, out: Path, seed: int) -> dict[int, pycolmap.Reconstruction]:
    """GLOMAP on the CPU, seeded, principal point held; `out` emptied first."""
    _empty_folder(out)
    pipeline = pycolmap.GlobalPipelineOptions()
    pipeline.random_seed = seed
    pipeline.mapper.random_seed = seed
    pipeline.mapper.rotation_averaging.random_seed = seed
    pipeline.mapper.global_positioning.random_seed = seed
    pipeline.mapper.global_positioning.use_gpu = False
    pipeline.mapper.bundle_adjustment.refine_principal_point = False
    pipeline.mapper.bundle_adjustment.ceres.use_gpu = False
    # global positioning on the best tracks per view, not all (its retriangulation brings the rest
    # back): faster on large sets with equal or lower errors; far fewer tracks lost accuracy
    pipeline.mapper.track_required_tracks_per_view = GLOBAL_TRACKS_PER_VIEW
    # one thread: with several, its Ceres solves differ in the last bits from run to run, which the
    # neural SfM after it amplifies into visibly different poses; as fast on 2 cores either way
    pipeline.num_threads = pipeline.mapper.num_threads = 1
    return pycolmap.global_mapping(database, image_dir, out, pipeline)


def _empty_folder(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


def merge_unregistered(inputs: Scene, result: Scene) -> Scene:
    """Add back (unposed) every input view the result does not contain, keeping input order."""
    by_name = result.view_by_name()
    views: list[View] = []
    for v in inputs.views:
        if v.name in by_name:
            views.append(result.views[by_name[v.name]])
        else:
            views.append(View(v.name, v.path, 0, split=v.split))
    order = {v.name: i for i, v in enumerate(views)}
    remap = np.array([order[v.name] for v in result.views], np.int64)
    tracks = [np.stack([remap[t[:, 0]], t[:, 1]], 1) if len(t) else t for t in result.points.tracks]
    result.points.tracks = tracks
    return Scene(result.cameras, views, result.points, result.to_normalised)
