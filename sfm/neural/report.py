"""The neural SfM's results: each view's report (registered or why not, its observations and their
mean reprojection error) and the Scene with poses, cameras and coloured sparse points."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fields.images import load_image
from fields.scene import Points, Scene
from sfm.io.colmap_model import nearest_rotation
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.state import Reconstruction, ViewReport, view_errors


def finish_reports(rec: Reconstruction, opts: NeuralSfMOptions) -> None:
    """Each registered view's observations of points and their mean reprojection error in its report;
    a view never tried reported as never matched to the model."""
    for v, rep in rec.reports.items():
        rep.inliers, rep.error_px = 0, float("nan")  # a withdrawn view keeps no count from its last pose
        if v in rec.poses:
            errors = view_errors(rec, v)
            rep.inliers = len(errors)
            if len(errors):
                rep.error_px = float(errors.mean())
    for v in range(len(rec.cameras)):
        rec.reports.setdefault(v, ViewReport(reason="never matched to the model"))


def to_scene(rec: Reconstruction, inputs: Scene) -> Scene:
    """The inputs with poses and the sparse points (colours from the first observation's image)."""
    cameras = list(inputs.cameras)
    for v, c in enumerate(rec.camera_index):
        cameras[c] = rec.cameras[v]
    # the neural BA works in float32: its rotations are made exactly orthonormal, so that every file
    # format (quaternions in COLMAP, matrices in transforms.json) holds the same pose
    views = [replace(v, R=nearest_rotation(rec.poses[i][0]) if i in rec.poses else None,
                     t=rec.poses[i][1].astype(np.float64) if i in rec.poses else None,
                     keypoints=rec.corr.keypoints[i].astype(np.float64)) for i, v in enumerate(inputs.views)]
    out = Scene(cameras, views, Points())
    keep = np.flatnonzero(rec.has_point())
    tracks = []
    for tid in keep:
        tr = rec.tracks[tid]
        tracks.append(tr[np.isin(tr[:, 0], list(rec.poses))])
    rgb = point_colours(inputs, rec, keep)
    out.points = Points(rec.xyz[keep].copy(), rgb, tracks)
    return out


def point_colours(scene: Scene, rec: Reconstruction, keep: np.ndarray) -> np.ndarray:
    """Per track in keep: the colour (uint8 RGB) of the pixel under its first observation's keypoint."""
    rgb = np.full((len(keep), 3), 128, np.uint8)
    first_view = np.array([rec.tracks[t][0, 0] for t in keep], np.int64)
    first_kp = np.array([rec.tracks[t][0, 1] for t in keep], np.int64)
    for v in np.unique(first_view):
        sel = np.flatnonzero(first_view == v)
        img = load_image(scene.views[v].path)[..., :3]
        xy = rec.corr.keypoints[v][first_kp[sel]]
        px = np.clip(xy.astype(np.int64), 0, [img.shape[1] - 1, img.shape[0] - 1])
        rgb[sel] = np.clip(img[px[:, 1], px[:, 0]] * 255.0, 0, 255).astype(np.uint8)
    return rgb
