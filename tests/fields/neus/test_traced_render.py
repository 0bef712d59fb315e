"""The sphere-traced renderer (fields/neus/traced_render.py) against the volume renderer on analytic
fields: the crossing depth, and whole renders of two spheres (hits, misses, silhouettes and a ray
that starts inside) in colour, opacity, depth and normal."""

from __future__ import annotations

import torch
from torch import nn

from fields.geometry.rays import sphere_bounds
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.rendering import NeuSModel, Sharpness, render_rays_inference
from fields.neus.traced_render import render_rays_traced, trace_to_surface


class TwoSpheres(nn.Module):
    """The union of two spheres, an exact distance outside both."""

    n_features = 4

    def sdf(self, x):
        a = (x - torch.tensor([0.0, 0.0, 0.1])).norm(dim=-1) - 0.45
        b = (x - torch.tensor([0.35, 0.3, -0.45])).norm(dim=-1) - 0.15
        return torch.minimum(a, b)

    def forward(self, x):
        return self.sdf(x), torch.zeros(x.shape[0], 4)

    def gradient(self, x, create_graph=False):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            f = self.sdf(x)
            (g,) = torch.autograd.grad(f.sum(), x)
        return f.detach(), torch.zeros(x.shape[0], 4), g


class PositionColour(nn.Module):
    """Colour varies with the position, so a colour read at the wrong place shows."""

    def forward(self, x, d, n, f):
        return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


class Sky(nn.Module):
    def forward(self, d):
        return torch.tensor([0.2, 0.3, 0.9]).expand(d.shape[0], 3)


def model() -> NeuSModel:
    return NeuSModel(TwoSpheres(), PositionColour(), Sky(), Sharpness(init=0.6))  # s = e^6 ~ 400


def rays(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    o = torch.tensor([[0.0, 0.0, -3.0]]) + torch.rand(n, 3, generator=gen) * 0.2
    target = torch.rand(n, 3, generator=gen) * 1.4 - 0.7  # hits, misses and silhouettes
    return o, torch.nn.functional.normalize(target - o, dim=-1)


def test_the_trace_finds_the_first_crossing():
    sdf = TwoSpheres().sdf
    o, d = rays(400)
    near, far, _ = sphere_bounds(o, d)
    trace = trace_to_surface(sdf, o, d, near, far, tau=1e-9)
    assert trace.hit.sum() > 100 and (~trace.hit).sum() > 50
    x = o + trace.depth[:, None] * d
    assert float(sdf(x[trace.hit]).abs().max()) < 1e-3
    # nothing closer on the ray before the crossing: the SDF along it stays positive
    for k in torch.nonzero(trace.hit).squeeze(1)[:50]:
        ts = torch.linspace(float(near[k]), float(trace.depth[k]) - 2e-3, 200)
        assert float(sdf(o[k] + ts[:, None] * d[k]).min()) > 0.0


def test_traced_render_matches_the_volume_render():
    m = model()
    o, d = rays(600, seed=1)
    o[0], d[0] = torch.tensor([0.0, 0.0, 0.1]), torch.tensor([0.0, 0.0, 1.0])  # starts inside the big sphere
    near, far, _ = sphere_bounds(o, d)
    grid = OccupancyGrid.from_sdf(m.sdf.sdf, 48)
    vol = render_rays_inference(m, o, d, near, far, n_samples=512, grid=grid)
    out = render_rays_traced(m, o, d, near, far, n_samples=512, grid=grid)
    assert float((out.opacity - vol.opacity).abs().max()) < 0.05
    err = (out.rgb - vol.rgb).abs().amax(-1)
    assert float(err.quantile(0.95)) < 0.01 and float(err.max()) < 0.1
    hit = vol.opacity > 0.99
    assert float((out.depth[hit] - vol.depth[hit]).abs().quantile(0.95)) < 0.01
    assert float((out.normal[hit] - vol.normal[hit]).norm(dim=-1).quantile(0.95)) < 0.05
    assert out.opacity[0] > 0.99  # the ray from inside
