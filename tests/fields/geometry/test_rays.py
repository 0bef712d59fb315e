"""Rays (fields/geometry/rays.py) on analytic cases: a camera's ray through a projected point, the
inverse of OpenCV's distortion, and where rays enter and leave the unit sphere and cube."""

from __future__ import annotations

import numpy as np
import torch
from synthetic import look_at_target, project

from fields.geometry.rays import (
    box_bounds,
    camera_rays,
    sphere_bounds,
    undistort_normalised,
)
from fields.scene import Camera


def test_camera_ray_through_a_projected_point_passes_through_it():
    cam = Camera.from_focal(64, 48, 50.0, 52.0, 31.0, 25.0)
    [(R, t)] = look_at_target([(2.0, -1.0, 1.5)])
    X = np.array([[0.2, -0.1, 0.3]])
    o, d = camera_rays(cam, R, t, project(cam.K, (R, t), X))
    s = (X[0] - o[0]) @ d[0]
    assert np.allclose(o[0] + s * d[0], X[0], atol=1e-9)


def test_undistortion_inverts_opencv_distortion():
    dist = np.array([0.1, -0.05, 0.002, -0.001])
    und = np.random.default_rng(0).uniform(-0.4, 0.4, size=(50, 2))
    x, y = und[:, 0], und[:, 1]
    r2 = x * x + y * y
    radial = 1 + dist[0] * r2 + dist[1] * r2 * r2
    dx = 2 * dist[2] * x * y + dist[3] * (r2 + 2 * x * x)
    dy = dist[2] * (r2 + 2 * y * y) + 2 * dist[3] * x * y
    distorted = np.stack([x * radial + dx, y * radial + dy], 1)
    assert np.allclose(undistort_normalised(distorted, dist, iters=30), und, atol=1e-8)


def test_sphere_bounds_of_a_ray_through_the_centre():
    o = torch.tensor([[0.0, 0.0, -3.0], [0.0, 2.0, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    near, far, hit = sphere_bounds(o, d)
    assert torch.allclose(near[0], torch.tensor(2.0)) and torch.allclose(far[0], torch.tensor(4.0))
    assert hit.tolist() == [True, False]


def test_box_bounds_enter_and_leave_the_cube_and_start_at_the_origin_inside_it():
    o = torch.tensor([[0.0, 0.0, -5.0], [0.0, 2.0, -5.0], [0.0, 0.0, 0.0], [-3.0, -3.0, -3.0]])
    d = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0],
                                                    [1.0, 1.0, 1.0]]), dim=-1)
    near, far, hit = box_bounds(o, d)
    assert hit.tolist() == [True, False, True, True]
    assert torch.allclose(near[[0, 2, 3]], torch.tensor([4.0, 0.0, 2.0 * 3**0.5]))
    assert torch.allclose(far[[0, 2, 3]], torch.tensor([6.0, 1.0, 4.0 * 3**0.5]))
