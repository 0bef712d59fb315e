"""The neural SfM's global start: GLOMAP (pycolmap's global mapper, on the same matches) places every
view it can at once, by robust rotation averaging over all verified pairs and then global positioning;
the neural pipeline takes over from there (the SDF fitted to the points, neural bundle adjustment,
the views it left out registered one by one).

Why not grow from one pair: on a sparse match graph of a symmetric object (lego from 25 views) a
look-alike pair of views seen from opposite sides matches by the hundred and agrees with its
neighbours, so the incremental mapper's PnP and epipolar votes place views wrongly through it; the
loops of the whole graph outvote it in rotation averaging (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fields.scene import Camera, Scene
from sfm.colmap import run_mapper
from sfm.io.colmap_model import scene_from_reconstruction


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
