"""Sphere tracing and the Newton snap onto the zero level set (fields/geometry/sphere_tracing.py,
level_set.py), against an analytic sphere whose depths and gradients are known in closed form."""

from __future__ import annotations

import torch
from synthetic import SphereSDF, closest_approach, sphere_depth

from fields.geometry.level_set import newton_snap
from fields.geometry.sphere_tracing import differentiable_depth, sphere_trace


def rays(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    o = torch.tensor([0.0, 0.0, -3.0], dtype=torch.float64) + 0.2 * torch.rand(n, 3, generator=g, dtype=torch.float64)
    aim = torch.rand(n, 3, generator=g, dtype=torch.float64) * 1.4 - 0.7
    d = torch.nn.functional.normalize(aim - o, dim=-1)
    return o, d


def test_sphere_tracing_depth_is_within_1e_3_and_misses_are_reported():
    sdf = SphereSDF()
    o, d = rays(500)
    res = sphere_trace(sdf, o, d, torch.zeros(500, dtype=torch.float64), torch.full((500,), 6.0, dtype=torch.float64))
    truth = sphere_depth(o, d, sdf.c, 0.5)
    clear = (closest_approach(o, d, sdf.c) - 0.5).abs() > 0.01  # grazing rays converge slowly; leave them out
    assert torch.equal(res.hit[clear], ~torch.isnan(truth[clear]))
    assert 100 < int(res.hit[clear].sum()) < 450
    assert (res.depth[res.hit] - truth[res.hit]).abs().max() < 1e-3


def test_a_ray_starting_inside_is_not_a_hit():
    sdf = SphereSDF()
    o = torch.tensor([[0.1, -0.05, 0.0]], dtype=torch.float64)
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    res = sphere_trace(sdf, o, d, torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    assert not bool(res.hit[0])


def test_traced_depth_has_the_analytic_gradient_in_the_ray_and_the_field():
    sdf = SphereSDF()
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
    truth = sphere_depth(o2, d, sdf.c, r)
    (a_o, a_r) = torch.autograd.grad(truth.sum(), [o2, r])
    assert torch.allclose(t, truth, atol=1e-6)
    assert torch.allclose(g_o, a_o, rtol=1e-4, atol=1e-5)
    assert torch.allclose(g_r, a_r, rtol=1e-4)


def test_one_newton_step_lands_on_a_distance_function_and_carries_its_gradient():
    sdf = SphereSDF()
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
