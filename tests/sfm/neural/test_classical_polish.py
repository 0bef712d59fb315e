"""The classical polish of the neural SfM's model (sfm/neural/classical_polish.py): one focal length
for square pixels, and the COLMAP camera models it can hand a camera to."""

from __future__ import annotations

import numpy as np
from synthetic import ring_scenes

from fields.scene import Camera
from sfm.neural.classical_polish import one_focal_camera, polish
from sfm.observation_floor import floor_model


def test_the_polish_refines_one_focal_length_for_square_pixels():
    """On a ring of views at one elevation, fx and fy refined apart drifted (346 -> 229 px for fy);
    with one focal length it stays within a few percent of the truth."""
    model = floor_model(*ring_scenes(noise_px=0.5, pose_error_deg=0.0))
    cams, _, _ = polish(model.cameras, {k: (v.R, v.t) for k, v in enumerate(model.views)}, [0] * 8,
                        [v.keypoints for v in model.views], model.points.xyz, model.points.tracks, True)
    K = cams[0].K
    assert K[0, 0] == K[1, 1]
    assert abs(K[0, 0] / model.cameras[0].K[0, 0] - 1.0) < 0.05


def test_one_focal_camera_keeps_radial_distortion_and_declines_what_it_cannot_hold():
    cam = Camera.from_focal(400, 300, 350.0, 350.0, 201.0, 149.0)
    assert one_focal_camera(cam, 1).model.name == "SIMPLE_PINHOLE"
    cam.dist = np.array([0.05, -0.01, 0.0, 0.0])
    radial = one_focal_camera(cam, 2)
    assert radial.model.name == "RADIAL" and np.allclose(radial.params, [350.0, 201.0, 149.0, 0.05, -0.01])
    cam.dist = np.array([0.05, 0.0, 0.001, 0.0])
    assert one_focal_camera(cam, 3) is None
    assert one_focal_camera(Camera.from_focal(400, 300, 350.0, 351.0, 200.0, 150.0), 4) is None
