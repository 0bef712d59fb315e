"""Triangulation (sfm/geometry/triangulation.py) on synthetic views: a point seen exactly, pixels
traced onto an analytic surface, and matches whose rays meet off a misplaced surface."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from synthetic import (
    SphereSDF,
    closest_approach,
    exact_keypoints,
    points_on_sphere,
    ring,
    sphere_depth,
)

from sfm.geometry.triangulation import (
    reprojection_error,
    trace_pixels,
    triangulate_on_sdf,
    triangulate_track,
)


def test_triangulate_track_recovers_a_point_seen_exactly():
    cam, poses, kps, X = ring(5, 10)
    P = [cam.K @ np.c_[R, t] for R, t in poses]
    got = triangulate_track(P, np.stack([k[3] for k in kps]))
    assert np.allclose(got, X[3], atol=1e-9)


def test_pixels_of_a_distant_narrow_camera_are_traced_onto_the_surface():
    """A camera 12 units out with a 5 degree field of view (as on the Middlebury dino, whose cameras sit
    ~6.4 units from the cube's centre): its rays are traced inside the SDF's cube, wherever it is."""
    sdf = SphereSDF()
    f32 = lambda x: sdf(x.double()).float()  # noqa: E731
    K = np.array([[4000.0, 0, 160], [0, 4000.0, 120], [0, 0, 1]])
    R, t = np.eye(3), np.array([0.0, 0.0, 12.0])  # centre at (0, 0, -12), looking along +z
    x = np.stack(np.meshgrid(np.linspace(0, 320, 17), np.linspace(0, 240, 13)), -1).reshape(-1, 2)
    X, hit = trace_pixels(f32, K, R, t, x)
    o = torch.tensor([0.0, 0.0, -12.0], dtype=torch.float64).expand(len(x), 3)
    d = torch.nn.functional.normalize(torch.tensor(np.c_[(x - [160, 120]) / 4000, np.ones(len(x))]), dim=-1)
    truth = sphere_depth(o, d, sdf.c, 0.5)
    clear = (closest_approach(o, d, sdf.c) - 0.5).abs() > 0.01
    assert np.array_equal(hit[clear.numpy()], ~torch.isnan(truth[clear]).numpy())
    assert 50 < int(hit.sum()) < len(x)
    assert np.abs(np.linalg.norm(X[hit] - sdf.c.numpy(), axis=1) - 0.5).max() < 1e-3


def test_a_match_is_triangulated_where_its_rays_meet_even_off_a_misplaced_surface():
    """Two views 30 deg apart see points 0.04 outside the SDF's sphere (a surface fitted to too few
    points, as on the Middlebury dino): the traced hits' midpoints reproject several pixels off, so
    the rays' own intersection is kept, and |sdf| there says how far the surface is."""
    sdf = SphereSDF(c=(0.0, 0.0, 0.0))
    f32 = lambda x: sdf(x.double()).float()  # noqa: E731
    K = np.array([[800.0, 0, 200], [0, 800.0, 150], [0, 0, 1]])
    poses = []
    for a in (-15.0, 15.0):
        R = Rotation.from_euler("y", a, degrees=True).as_matrix()
        poses.append((R, np.array([0.0, 0.0, 3.0])))  # centre at -R^T (0, 0, 3), looking at the origin
    X = points_on_sphere(np.random.default_rng(0), 300, 0.54)
    X[:, 2] = -np.abs(X[:, 2])  # the half facing both cameras
    x1, x2 = exact_keypoints(K, poses, X)
    P, residual = triangulate_on_sdf(f32, K, poses[0], poses[1], x1, x2)
    for (R, t), x in zip(poses, (x1, x2)):
        assert reprojection_error(K, R, t, P, x).max() < 1e-3
    np.testing.assert_allclose(P, X, atol=1e-5)
    np.testing.assert_allclose(residual, 0.04, atol=1e-4)
