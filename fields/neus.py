"""NeuS volume rendering (Wang et al. 2021): opacity from the logistic CDF of the SDF at section ends."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fields.occupancy_grid import OccupancyGrid
from fields.radiance_field import Background, RadianceField
from fields.sdf_field import SDFField


class Sharpness(nn.Module):
    """The learnable inverse standard deviation s = exp(10 * v) of the logistic density."""

    def __init__(self, init: float = 0.3) -> None:
        super().__init__()
        self.variance = nn.Parameter(torch.tensor(init))

    def forward(self) -> torch.Tensor:
        return torch.exp(self.variance * 10.0).clamp(1e-6, 1e6)


@dataclass
class RenderOut:
    rgb: torch.Tensor  # (R, 3)
    depth: torch.Tensor  # (R,)
    opacity: torch.Tensor  # (R,) weight spent inside the sphere
    weights: torch.Tensor  # (R, S) per-section weights
    points: torch.Tensor  # (R, S, 3) section start points


def section_alpha(sdf_start: torch.Tensor, sdf_end: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Discrete NeuS opacity of each section from the SDF at its two ends (Wang et al., eq. 13)."""
    cdf_start, cdf_end = torch.sigmoid(sdf_start * s), torch.sigmoid(sdf_end * s)
    return ((cdf_start - cdf_end + 1e-5) / (cdf_start + 1e-5)).clamp(0.0, 1.0)


def stratified_edges(near: torch.Tensor, far: torch.Tensor, n_samples: int, perturb: bool) -> torch.Tensor:
    """n_samples + 1 sorted section ends per ray between near and far, jittered when perturb."""
    n_rays = near.shape[0]
    u = torch.linspace(0.0, 1.0, n_samples + 1, device=near.device)[None].expand(n_rays, -1)
    if perturb:
        u = (u + (torch.rand(n_rays, n_samples + 1, device=near.device) - 0.5) / n_samples).clamp(0.0, 1.0)
        u = torch.sort(u, dim=1).values
    return near[:, None] + (far - near)[:, None] * u


def evaluate_sdf(sdf_field: SDFField, x: torch.Tensor, grid: OccupancyGrid | None) -> tuple[torch.Tensor, torch.Tensor]:
    """SDF and features at x; with a grid, free-space points take the coarse SDF and zero features."""
    if grid is None:
        return sdf_field(x)
    idx = torch.nonzero(grid.occupied(x)).squeeze(1)
    sdf = grid.coarse_sdf(x)
    feat = torch.zeros(x.shape[0], sdf_field.n_features, device=x.device)
    if idx.numel():
        s_fine, f_fine = sdf_field(x[idx])
        sdf = sdf.index_put((idx,), s_fine)
        feat = feat.index_put((idx,), f_fine)
    return sdf, feat


def render_rays(sdf_field: SDFField, radiance: RadianceField, background: Background, sharpness: Sharpness,
                o: torch.Tensor, d: torch.Tensor, near: torch.Tensor, far: torch.Tensor, n_samples: int,
                perturb: bool = True, grid: OccupancyGrid | None = None) -> RenderOut:
    """Render rays (o, d unit) between near and far; each section takes the colour at its start.

    The SDF is evaluated at section ends, so no spatial gradient is needed to render (the Eikonal
    term is computed on a separate subset of points by the trainer). With an occupancy grid, only
    points near the surface go through the network.
    """
    n_rays = o.shape[0]
    edges = stratified_edges(near, far, n_samples, perturb)
    pts = o[:, None] + d[:, None] * edges[..., None]  # (R, S+1, 3)
    sdf, feat = evaluate_sdf(sdf_field, pts.reshape(-1, 3), grid)
    sdf = sdf.reshape(n_rays, n_samples + 1)
    alpha = section_alpha(sdf[:, :-1], sdf[:, 1:], sharpness())
    trans = torch.cumprod(torch.cat([torch.ones(n_rays, 1, device=o.device), 1.0 - alpha + 1e-7], dim=1), dim=1)
    weights = alpha * trans[:, :-1]
    starts = pts[:, :-1].reshape(-1, 3)
    dirs = d[:, None].expand(-1, n_samples, -1).reshape(-1, 3)
    feat = feat.reshape(n_rays, n_samples + 1, -1)[:, :-1].reshape(n_rays * n_samples, -1)
    rgb_s = radiance(starts, dirs, feat).reshape(n_rays, n_samples, 3)
    opacity = weights.sum(1)
    rgb = (weights[..., None] * rgb_s).sum(1) + (1.0 - opacity)[:, None] * background(d)
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    depth = (weights * mids).sum(1) + (1.0 - opacity) * far
    return RenderOut(rgb, depth, opacity, weights, pts[:, :-1])


class NeuSModel(nn.Module):
    """Everything a NeuS reconstruction learns: SDF, colour, background and sharpness."""

    def __init__(self, sdf: SDFField, radiance: RadianceField, background: Background, sharpness: Sharpness) -> None:
        super().__init__()
        self.sdf, self.radiance, self.background, self.sharpness = sdf, radiance, background, sharpness

    def render(self, o: torch.Tensor, d: torch.Tensor, near: torch.Tensor, far: torch.Tensor, n_samples: int,
               perturb: bool = True, grid: OccupancyGrid | None = None) -> RenderOut:
        return render_rays(self.sdf, self.radiance, self.background, self.sharpness, o, d, near, far, n_samples,
                           perturb, grid)
