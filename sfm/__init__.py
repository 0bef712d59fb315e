"""sfm: camera poses from photos.

`frontend` (pycolmap SIFT, pair selection, verified matches, tracks), `geometry` (two-view, PnP,
triangulation, epipolar checks), `neural` (the Level-S2fM mapper, one module per step, `mapper.py` the
loop; neural and classical bundle adjustment; self-calibration), `colmap` (pycolmap's incremental and
global mappers), `io` (every camera file format), `pose_metrics` and `observation_floor` (scores
against a reference), `report` (sfm_report.json).

The names below are the public API; they are imported on first use.
"""

from __future__ import annotations

from fields.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "neural_sfm": "sfm.neural.mapper", "NeuralSfMOptions": "sfm.neural.options",
    "classical_sfm": "sfm.colmap", "FrontEndOptions": "sfm.frontend.extract",
    "load_scene": "sfm.io", "read_colmap": "sfm.io", "write_colmap": "sfm.io", "read_transforms": "sfm.io",
    "write_transforms": "sfm.io", "compare_poses": "sfm.pose_metrics",
})
