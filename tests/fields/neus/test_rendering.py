"""NeuS rendering (fields/neus/rendering.py, occupancy_grid.py) on an analytic sphere: depth, normal
and colour of its first hit, samples the occupancy grid puts at the surface, the alpha compositing
weights, and the inference render against the training one."""

from __future__ import annotations

import torch
from torch import nn

from fields.geometry.rays import sphere_bounds
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.rendering import (
    NeuSModel,
    Sharpness,
    alpha_weights,
    annealed_cos,
    render_rays,
    section_alpha,
)


class AnalyticSphere(nn.Module):
    """|x| - r with a constant feature: a field whose surface is known exactly."""

    n_features = 4

    def __init__(self, r: float) -> None:
        super().__init__()
        self.r = r

    def forward(self, x):
        return x.norm(dim=-1) - self.r, torch.zeros(x.shape[0], 4)

    def sdf(self, x):
        return self.forward(x)[0]

    def gradient(self, x, create_graph=False):
        return x.norm(dim=-1) - self.r, torch.zeros(x.shape[0], 4), x / x.norm(dim=-1, keepdim=True)


class Constant(nn.Module):
    def __init__(self, value) -> None:
        super().__init__()
        self.value = torch.tensor(value)

    def forward(self, *args):
        return self.value.expand(args[0].shape[0], 3)


def sphere_model() -> NeuSModel:
    # s = e^5 ~ 148: a thin density shell
    return NeuSModel(AnalyticSphere(0.5), Constant([1.0, 0.0, 0.0]), Constant([0.0, 0.0, 1.0]), Sharpness(init=0.5))


def test_neus_depth_and_normal_on_an_analytic_sphere():
    o = torch.tensor([[0.0, 0.0, -3.0], [0.1, 0.2, -3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    near, far, _ = sphere_bounds(o, d)
    expected = 3.0 - torch.sqrt(0.25 - (o[:, :2] ** 2).sum(-1))
    hit = o + d * expected[:, None]
    model = sphere_model()
    for anneal in (0.0, 1.0):  # annealing changes back faces, not the first hit of a sharp surface
        out = render_rays(model, o, d, near, far, n_samples=512, perturb=False, anneal=anneal)
        assert torch.allclose(out.depth, expected, atol=0.02)
        assert torch.all(out.opacity > 0.99)
        assert torch.allclose(out.rgb, torch.tensor([1.0, 0.0, 0.0]).expand(2, 3), atol=0.01)
        assert torch.allclose(out.normal, hit / 0.5, atol=0.03)


def test_occupancy_grid_puts_samples_at_the_surface_and_keeps_the_depth():
    model = sphere_model()
    grid = OccupancyGrid.from_sdf(model.sdf.sdf, 48)
    o = torch.tensor([[0.0, 0.0, -3.0], [0.1, 0.2, -3.0], [0.3, -0.1, -3.0]])
    d = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [-0.1, 0.0, 1.0]]), dim=-1)
    near, far, _ = sphere_bounds(o, d)
    dense = render_rays(model, o, d, near, far, n_samples=1024, perturb=False)
    guided = render_rays(model, o, d, near, far, n_samples=64, perturb=True, grid=grid)
    assert torch.allclose(guided.depth, dense.depth, atol=0.01)  # 64 guided samples do what 1024 even ones do
    edges = grid.sample_edges(o, d, near, far, 64, perturb=False)
    assert torch.all(edges[:, 1:] >= edges[:, :-1])
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    radius = (o[:, None] + d[:, None] * mids[..., None]).norm(dim=-1)
    assert ((radius - 0.5).abs() < 3 * grid.band).float().mean() > 0.8


def test_cos_annealing_endpoints():
    cos = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert torch.allclose(annealed_cos(cos, 1.0), -torch.relu(-cos))
    assert torch.allclose(annealed_cos(cos, 0.0), -(0.5 - 0.5 * cos))


def test_alpha_weights_match_the_explicit_product_and_its_gradient():
    alpha = torch.rand(4, 7, dtype=torch.float64) * 0.9
    alpha[1, 3] = 1.0  # an opaque section: nothing behind it is seen
    alpha.requires_grad_(True)

    def explicit(a: torch.Tensor) -> torch.Tensor:
        cols = []
        for i in range(a.shape[1]):
            t = torch.ones(a.shape[0], dtype=a.dtype)
            for j in range(i):
                t = t * (1.0 - a[:, j] + 1e-7)
            cols.append(a[:, i] * t)
        return torch.stack(cols, 1)

    w, ref = alpha_weights(alpha), explicit(alpha)
    assert torch.allclose(w, ref, atol=1e-12)
    assert float(w.detach()[1, 4:].abs().max()) < 1e-6
    g = torch.autograd.grad(w.square().sum(), alpha)[0]
    g_ref = torch.autograd.grad(ref.square().sum(), alpha)[0]
    assert torch.allclose(g, g_ref, atol=1e-9)


def test_section_alpha_is_zero_in_free_space_and_one_across_a_sharp_surface():
    s = torch.tensor(1e4)
    a = section_alpha(torch.tensor([0.5, 0.01]), torch.tensor([0.4, -0.01]), s)
    assert a[0] < 1e-3 and a[1] > 0.99


def test_inference_render_matches_the_training_render_on_a_sharp_sphere():
    from fields.neus.rendering import render_rays_inference

    model = NeuSModel(AnalyticSphere(0.5), Constant([1.0, 0.0, 0.0]), Constant([0.0, 0.0, 1.0]), Sharpness(init=0.7))
    gen = torch.Generator().manual_seed(0)
    o = torch.tensor([[0.0, 0.0, -3.0]]).expand(200, 3) + torch.rand(200, 3, generator=gen) * 0.1
    target = torch.rand(200, 3, generator=gen) * 1.2 - 0.6  # some rays miss the sphere
    d = torch.nn.functional.normalize(target - o, dim=-1)
    near, far, _ = sphere_bounds(o, d)
    grid = OccupancyGrid.from_sdf(model.sdf.sdf, 48)
    full = render_rays(model, o, d, near, far, n_samples=64, perturb=False, grid=grid)
    fast = render_rays_inference(model, o, d, near, far, n_samples=64, grid=grid)
    assert torch.allclose(fast.opacity, full.opacity, atol=0.02)
    assert torch.allclose(fast.rgb, full.rgb, atol=0.02)
    hit = full.opacity > 0.5
    assert torch.allclose(fast.depth[hit], full.depth[hit], atol=0.01)
    assert torch.allclose(fast.normal[hit], full.normal[hit], atol=0.03)
