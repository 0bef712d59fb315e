"""Classical bundle adjustment (pycolmap / Ceres, Levenberg-Marquardt) as a polish of the neural one.

Adam moves every parameter by about its learning rate per step, so a weakly observed direction
(the focal length against the depth of the scene) drifts slowly under the neural BA; a second-order
solver takes it in a few iterations. Points are free here; the SDF is refitted to them afterwards.
"""

from __future__ import annotations

import numpy as np
import pycolmap

from fields.scene import Camera, Points, Scene, View
from sfm.io.colmap_model import scene_to_reconstruction


def polish(cameras: list[Camera], poses: dict[int, tuple[np.ndarray, np.ndarray]], view_camera: list[int],
           keypoints: list[np.ndarray], xyz: np.ndarray, tracks: list[np.ndarray], refine_focal: bool = True
           ) -> tuple[list[Camera], dict[int, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Refined (shared cameras, poses by view, points) after a robust (Cauchy, 1 px) bundle adjustment.

    cameras: one per shared camera index; view_camera: the camera index of each view; tracks: per
    point, (view, keypoint) rows (observations of unregistered views are ignored).
    """
    views = [View(str(i), None, view_camera[i], *(poses[i] if i in poses else (None, None)), keypoints=keypoints[i])
             for i in range(len(view_camera))]
    scene = Scene(list(cameras), views, Points(xyz, np.zeros((len(xyz), 3), np.uint8), tracks))
    rec, image_id = scene_to_reconstruction(scene)
    opts = pycolmap.BundleAdjustmentOptions()
    opts.refine_focal_length = refine_focal
    opts.refine_principal_point = False
    opts.refine_extra_params = False
    opts.print_summary = False
    opts.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    opts.ceres.loss_function_scale = 1.0
    config = pycolmap.BundleAdjustmentConfig()
    for iid in image_id.values():
        config.add_image(iid)
    config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)  # no free similarity: LM stays regular
    pycolmap.create_default_bundle_adjuster(opts, config, rec).solve()
    out_cams = []
    for ci, cam in enumerate(cameras):
        p = rec.cameras[ci + 1].params
        out = Camera.from_focal(cam.width, cam.height, float(p[0]), float(p[1]), cam.K[0, 2], cam.K[1, 2])
        out.dist = cam.dist
        out_cams.append(out)
    out_poses = {}
    for vi, iid in image_id.items():
        pose = rec.images[iid].cam_from_world()
        out_poses[vi] = (np.asarray(pose.rotation.matrix()), np.asarray(pose.translation))
    pts = np.array([rec.points3D[pid].xyz for pid in sorted(rec.point3D_ids())]).reshape(-1, 3)
    return out_cams, out_poses, pts
