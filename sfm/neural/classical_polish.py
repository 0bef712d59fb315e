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


def one_focal_camera(cam: Camera, camera_id: int) -> pycolmap.Camera | None:
    """cam with one focal length (SIMPLE_PINHOLE, or RADIAL with its k1, k2), or None when its pixels
    are not square or it has tangential distortion. Refined apart, PINHOLE's and OPENCV's fx and fy
    drift on a ring of views at one elevation (a vertical stretch of the scene trades against fy, by
    10 % and more than a degree of rotation; test)."""
    K, d = cam.K, cam.dist
    if K[0, 0] != K[1, 1] or d[2] != 0 or d[3] != 0:
        return None
    if d[0] == 0 and d[1] == 0:
        return pycolmap.Camera(model="SIMPLE_PINHOLE", width=cam.width, height=cam.height,
                               params=[K[0, 0], K[0, 2], K[1, 2]], camera_id=camera_id)
    return pycolmap.Camera(model="RADIAL", width=cam.width, height=cam.height,
                           params=[K[0, 0], K[0, 2], K[1, 2], d[0], d[1]], camera_id=camera_id)


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
    if refine_focal:
        for ci, cam in enumerate(cameras):
            if (single := one_focal_camera(cam, ci + 1)) is not None:
                rec.cameras[ci + 1] = single
    opts = pycolmap.BundleAdjustmentOptions()
    opts.refine_focal_length = refine_focal
    opts.refine_principal_point = False
    opts.refine_extra_params = False
    opts.print_summary = False
    opts.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    opts.ceres.loss_function_scale = 1.0
    # converged once an iteration lowers the cost by less than 1e-6 of it: without a tolerance Ceres runs
    # all its iterations for the same cost to 7 digits, several times the time; 1e-9 instead of 1e-6
    # changes the poses by less than 1e-3 deg at about 3x the time
    opts.ceres.solver_options.function_tolerance = 1e-6
    config = pycolmap.BundleAdjustmentConfig()
    for iid in image_id.values():
        config.add_image(iid)
    config.fix_gauge(pycolmap.BundleAdjustmentGauge.TWO_CAMS_FROM_WORLD)  # no free similarity: LM stays regular
    pycolmap.create_default_bundle_adjuster(opts, config, rec).solve()
    out_cams = []
    for ci, cam in enumerate(cameras):
        c = rec.cameras[ci + 1]
        out = Camera.from_focal(cam.width, cam.height, float(c.focal_length_x), float(c.focal_length_y),
                                cam.K[0, 2], cam.K[1, 2])
        out.dist = cam.dist
        out_cams.append(out)
    out_poses = {}
    for vi, iid in image_id.items():
        pose = rec.images[iid].cam_from_world()
        out_poses[vi] = (np.asarray(pose.rotation.matrix()), np.asarray(pose.translation))
    pts = np.array([rec.points3D[pid].xyz for pid in sorted(rec.point3D_ids())]).reshape(-1, 3)
    return out_cams, out_poses, pts
