"""Sphere tracing and the Newton snap onto the zero level set, on analytic SDFs."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from fields.geometry.level_set import newton_snap
from fields.geometry.sphere_tracing import differentiable_depth, sphere_trace
from sfm.geometry.triangulation import (
    reproject,
    reprojection_error,
    trace_pixels,
    triangulate_on_sdf,
)


class Sphere(torch.nn.Module):
    """|x - c| - r with a learnable radius: the exact distance function of a sphere."""

    def __init__(self, r: float = 0.5, c=(0.1, -0.05, 0.0)) -> None:
        super().__init__()
        self.r = torch.nn.Parameter(torch.tensor(r, dtype=torch.float64))
        self.c = torch.tensor(c, dtype=torch.float64)

    def forward(self, x):
        return (x - self.c).norm(dim=-1) - self.r


def rays(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    o = torch.tensor([0.0, 0.0, -3.0], dtype=torch.float64) + 0.2 * torch.rand(n, 3, generator=g, dtype=torch.float64)
    aim = torch.rand(n, 3, generator=g, dtype=torch.float64) * 1.4 - 0.7
    d = torch.nn.functional.normalize(aim - o, dim=-1)
    return o, d


def closest_approach(o, d, c):
    oc = o - c
    b = (oc * d).sum(-1)
    return torch.sqrt((oc * oc).sum(-1) - b * b)


def analytic_depth(o, d, c, r):
    """First intersection of rays with a sphere (nan where they miss)."""
    oc = o - c
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - r * r)
    return -b - torch.sqrt(disc)


def test_sphere_tracing_depth_is_within_1e_3_and_misses_are_reported():
    sdf = Sphere()
    o, d = rays(500)
    res = sphere_trace(sdf, o, d, torch.zeros(500, dtype=torch.float64), torch.full((500,), 6.0, dtype=torch.float64))
    truth = analytic_depth(o, d, sdf.c, 0.5)
    clear = (closest_approach(o, d, sdf.c) - 0.5).abs() > 0.01  # grazing rays converge slowly; leave them out
    assert torch.equal(res.hit[clear], ~torch.isnan(truth[clear]))
    assert 100 < int(res.hit[clear].sum()) < 450
    assert (res.depth[res.hit] - truth[res.hit]).abs().max() < 1e-3


def test_a_ray_starting_inside_is_not_a_hit():
    sdf = Sphere()
    o = torch.tensor([[0.1, -0.05, 0.0]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    res = sphere_trace(sdf, o, d, torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    assert not bool(res.hit[0])


def test_traced_depth_has_the_analytic_gradient_in_the_ray_and_the_field():
    sdf = Sphere()
    o, d = rays(200, seed=1)
    # converged tightly, so the implicit derivative is taken at the surface itself
    res = sphere_trace(sdf, o, d, torch.zeros(200, dtype=torch.float64), torch.full((200,), 6.0, dtype=torch.float64),
                       max_steps=400, eps=1e-10)
    keep = res.hit & (closest_approach(o, d, sdf.c) < 0.45)  # not grazing
    o, d = o[keep].clone().requires_grad_(True), d[keep]
    t = differentiable_depth(sdf, o, d, res.depth[keep])
    (g_o, g_r) = torch.autograd.grad(t.sum(), [o, sdf.r])
    r = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    o2 = o.detach().clone().requires_grad_(True)
    truth = analytic_depth(o2, d, sdf.c, r)
    (a_o, a_r) = torch.autograd.grad(truth.sum(), [o2, r])
    assert torch.allclose(t, truth, atol=1e-6)
    assert torch.allclose(g_o, a_o, rtol=1e-4, atol=1e-5)
    assert torch.allclose(g_r, a_r, rtol=1e-4)


def test_one_newton_step_lands_on_a_distance_function_and_carries_its_gradient():
    sdf = Sphere()
    x = torch.rand(300, 3, dtype=torch.float64) * 2 - 1
    snapped, before = newton_snap(sdf, x, steps=1, create_graph=True)
    assert torch.allclose(before, sdf(x).abs().detach())
    assert sdf(snapped).abs().max() < 1e-9
    # the snapped point moves with the surface: d x' / d r is the unit direction from the centre
    (g,) = torch.autograd.grad(snapped[:, 0].sum(), sdf.r)
    assert torch.allclose(g, torch.nn.functional.normalize(x - sdf.c, dim=-1)[:, 0].sum(), rtol=1e-6)


def test_newton_steps_converge_on_a_non_distance_level_set_along_the_gradient_line():
    def f(x):  # same zero set as a radius-0.5 sphere, |grad| != 1
        return (x * x).sum(-1) - 0.25

    x = torch.nn.functional.normalize(torch.randn(300, 3, dtype=torch.float64), dim=-1) * (0.3 + torch.rand(300, 1, dtype=torch.float64))
    snapped, _ = newton_snap(f, x, steps=6)
    assert f(snapped).abs().max() < 1e-10
    assert torch.allclose(torch.nn.functional.normalize(snapped, dim=-1), torch.nn.functional.normalize(x, dim=-1))


def test_pixels_of_a_distant_narrow_camera_are_traced_onto_the_surface():
    """A camera 12 units out with a 5 degree field of view (as on the Middlebury dino, whose cameras sit
    ~6.4 units from the cube's centre): its rays are traced inside the SDF's cube, wherever it is."""
    sdf = Sphere()
    f32 = lambda x: sdf(x.double()).float()  # noqa: E731
    K = np.array([[4000.0, 0, 160], [0, 4000.0, 120], [0, 0, 1]])
    R, t = np.eye(3), np.array([0.0, 0.0, 12.0])  # centre at (0, 0, -12), looking along +z
    x = np.stack(np.meshgrid(np.linspace(0, 320, 17), np.linspace(0, 240, 13)), -1).reshape(-1, 2)
    X, hit = trace_pixels(f32, K, R, t, x)
    o = torch.tensor([0.0, 0.0, -12.0], dtype=torch.float64).expand(len(x), 3)
    d = torch.nn.functional.normalize(torch.tensor(np.c_[(x - [160, 120]) / 4000, np.ones(len(x))]), dim=-1)
    truth = analytic_depth(o, d, sdf.c, 0.5)
    clear = (closest_approach(o, d, sdf.c) - 0.5).abs() > 0.01
    assert np.array_equal(hit[clear.numpy()], ~torch.isnan(truth[clear]).numpy())
    assert 50 < int(hit.sum()) < len(x)
    assert np.abs(np.linalg.norm(X[hit] - sdf.c.numpy(), axis=1) - 0.5).max() < 1e-3


def test_a_match_is_triangulated_where_its_rays_meet_even_off_a_misplaced_surface():
    """Two views 30 deg apart see points 0.04 outside the SDF's sphere (a surface fitted to too few
    points, as on the Middlebury dino): the traced hits' midpoints reproject several pixels off, so
    the rays' own intersection is kept, and |sdf| there says how far the surface is."""
    sdf = Sphere(c=(0.0, 0.0, 0.0))
    f32 = lambda x: sdf(x.double()).float()  # noqa: E731
    K = np.array([[800.0, 0, 200], [0, 800.0, 150], [0, 0, 1]])
    poses = []
    for a in (-15.0, 15.0):
        R = Rotation.from_euler("y", a, degrees=True).as_matrix()
        poses.append((R, np.array([0.0, 0.0, 3.0])))  # centre at -R^T (0, 0, 3), looking at the origin
    rng = np.random.default_rng(0)
    n = rng.normal(size=(300, 3))
    n[:, 2] = -np.abs(n[:, 2])  # the half facing both cameras
    X = 0.54 * n / np.linalg.norm(n, axis=1, keepdims=True)
    x1, x2 = (reproject(K, R, t, X)[0] for R, t in poses)
    P, residual = triangulate_on_sdf(f32, K, poses[0], poses[1], x1, x2)
    for (R, t), x in zip(poses, (x1, x2)):
        assert reprojection_error(K, R, t, P, x).max() < 1e-3
    np.testing.assert_allclose(P, X, atol=1e-5)
    np.testing.assert_allclose(residual, 0.04, atol=1e-4)
