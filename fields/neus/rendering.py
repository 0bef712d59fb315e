"""NeuS volume rendering (Wang et al. 2021): opacity from the logistic CDF of the SDF at section ends,
with cos annealing, normals for the colour network and occupancy-grid-guided samples."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.radiance_field import Background, RadianceField
from fields.neus.sdf_field import SDFField


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
    weights: torch.Tensor  # (R, S) per-section weights ((R, 0) where a kernel composited without them)
    normal: torch.Tensor  # (R, 3) weighted unit normals (zero where nothing was hit)
    gradients: torch.Tensor  # (M, 3) SDF gradients at the samples that went through the network (Eikonal)
    points: torch.Tensor  # (M, 3) those samples
    extra_sdf: torch.Tensor = field(default_factory=lambda: torch.zeros(0))  # (K,) at render_rays' `extra` points
    extra_gradients: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 3))  # (K, 3) and their gradients


def section_alpha(sdf_start: torch.Tensor, sdf_end: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Discrete NeuS opacity of each section from the SDF at its two ends (Wang et al., eq. 13)."""
    cdf_start, cdf_end = torch.sigmoid(sdf_start * s), torch.sigmoid(sdf_end * s)
    return ((cdf_start - cdf_end + 1e-5) / (cdf_start + 1e-5)).clamp(0.0, 1.0)


def annealed_cos(true_cos: torch.Tensor, anneal: float) -> torch.Tensor:
    """NeuS's cos annealing: early on (anneal 0) every section is treated as facing the ray at least
    half-way, so back faces and grazing sections still get opacity and gradients; at anneal 1 the
    true cosine of the ray with the normal (only its facing part) is used."""
    return -(torch.relu(-true_cos * 0.5 + 0.5) * (1.0 - anneal) + torch.relu(-true_cos) * anneal)


def transmittance(alpha: torch.Tensor) -> torch.Tensor:
    """prod_{j<i} (1 - alpha_j) along each row: the light left in front of each section.

    The product is a cumulative sum of logs: torch.cumprod's backward takes a slow path with
    a host sync (tens of ms per batch on a GPU), a cumsum's backward is one more cumsum. The log
    transmittance is clamped at -80: exp of anything below -87 underflows, and on the CPU an
    underflowing exp leaves the vectorised path (20x slower); e^-80 is as good as nothing here.
    """
    log_t = torch.cumsum(torch.log(1.0 - alpha + 1e-7), dim=1).clamp_min(-80.0)
    return torch.exp(torch.nn.functional.pad(log_t[:, :-1], (1, 0)))


def alpha_weights(alpha: torch.Tensor) -> torch.Tensor:
    """Compositing weights alpha_i * prod_{j<i} (1 - alpha_j) along each row."""
    return alpha * transmittance(alpha)


def stratified_edges(near: torch.Tensor, far: torch.Tensor, n_samples: int, perturb: bool) -> torch.Tensor:
    """n_samples + 1 sorted section ends per ray between near and far, jittered when perturb."""
    n_rays = near.shape[0]
    u = torch.linspace(0.0, 1.0, n_samples + 1, device=near.device)[None].expand(n_rays, -1)
    if perturb:
        u = (u + (torch.rand(n_rays, n_samples + 1, device=near.device) - 0.5) / n_samples).clamp(0.0, 1.0)
        u = torch.sort(u, dim=1).values
    return near[:, None] + (far - near)[:, None] * u


def network_at(sdf_field: SDFField, x: torch.Tensor, idx: torch.Tensor, base_sdf: torch.Tensor, create_graph: bool,
               extra: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """The network only at x[idx] (skipping the rest is where the time goes): SDF and gradient at all
    of x (elsewhere base_sdf and a zero gradient: those points carry no rendering weight), the
    feature and gradient at x[idx] alone, and the SDF and gradient at the `extra` points, which join
    the same network batch (one pass through the encoding's kernels instead of several)."""
    n_extra = 0 if extra is None else extra.shape[0]
    if not idx.numel() and not n_extra:
        empty = x.new_zeros(0, 3)
        return base_sdf, torch.zeros_like(x), x.new_zeros(0, sdf_field.n_features), empty, x.new_zeros(0), empty
    pts = x[idx] if not n_extra else torch.cat([x[idx], extra])
    s_all, f_all, g_all = sdf_field.gradient(pts, create_graph=create_graph)
    m = idx.numel()
    s_net, f_net, g_net = s_all[:m], f_all[:m], g_all[:m]
    return (base_sdf.index_put((idx,), s_net), torch.zeros_like(x).index_put((idx,), g_net), f_net, g_net,
            s_all[m:], g_all[m:])


def sdf_values(sdf_field: SDFField, x: torch.Tensor, grid: OccupancyGrid | None) -> torch.Tensor:
    """SDF at x without gradients; with a grid, free-space points take the coarse SDF."""
    if grid is None:
        return sdf_field.sdf(x)
    sdf = grid.coarse_sdf(x)
    idx = torch.nonzero(grid.near_surface(sdf)).squeeze(1)
    if idx.numel():
        sdf = sdf.index_put((idx,), sdf_field.sdf(x[idx]))
    return sdf


@torch.no_grad()
def section_weights(model: "NeuSModel", o: torch.Tensor, d: torch.Tensor, edges: torch.Tensor,
                    grid: OccupancyGrid | None) -> torch.Tensor:
    """(R, S) NeuS weights of the sections between the given ends, from the SDF alone at the ends
    (NeuS's CDF difference): where each ray's rendering goes, at the price of a forward pass."""
    n_rays = o.shape[0]
    ends = (o[:, None] + d[:, None] * edges[..., None]).reshape(-1, 3)
    sdf = sdf_values(model.sdf, ends, grid).reshape(n_rays, -1)
    return alpha_weights(section_alpha(sdf[:, :-1], sdf[:, 1:], model.sharpness()))


def render_rays(model: "NeuSModel", o: torch.Tensor, d: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
                n_samples: int, perturb: bool = True, grid: OccupancyGrid | None = None, anneal: float = 1.0,
                create_graph: bool = False, extra: torch.Tensor | None = None,
                min_transmittance: float = 1e-4) -> RenderOut:
    """Render rays (o, d unit) between near and far, NeuS-style; the SDF and its gradient at the
    `extra` points (regularisers' points) come along, from the same network batch. Samples hidden
    behind the surface (transmittance below min_transmittance) skip the colour network.

    Each section's SDF and gradient are taken at its midpoint and extended to its ends along the
    (annealed) cosine; colour comes from the midpoint, its normal, the ray direction and the SDF's
    feature. With an occupancy grid the section ends are placed where the grid says the surface
    is (samples are not spent on empty space) and free-space points skip the network, taking the
    grid's coarse SDF instead.
    """
    n_rays = o.shape[0]
    edges = grid.sample_edges(o, d, near, far, n_samples, perturb) if grid is not None else \
        stratified_edges(near, far, n_samples, perturb)
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    dists = edges[:, 1:] - edges[:, :-1]
    pts = (o[:, None] + d[:, None] * mids[..., None]).reshape(-1, 3)
    if grid is not None:
        base = grid.coarse_sdf(pts)  # the samples' coarse SDF, once: the occupancy test and the free-space values
        used = torch.nonzero(grid.near_surface(base)).squeeze(1)
    else:
        base = torch.zeros(pts.shape[0], device=pts.device)
        used = torch.arange(pts.shape[0], device=pts.device)
    sdf, grad, feat_used, grad_used, extra_sdf, extra_grad = network_at(model.sdf, pts, used, base, create_graph, extra)
    dirs = d[:, None].expand(-1, n_samples, -1).reshape(-1, 3)
    cos = annealed_cos((dirs * grad).sum(-1), anneal).reshape(n_rays, n_samples)
    sdf = sdf.reshape(n_rays, n_samples)
    alpha = section_alpha(sdf - cos * dists * 0.5, sdf + cos * dists * 0.5, model.sharpness())
    packed = packed_compositing(alpha)
    trans = None if packed and alpha.is_cuda else transmittance(alpha)  # the colour skip's and PyTorch compositing's
    rgb_s = torch.zeros(pts.shape[0], 3, device=pts.device)
    lit = seen(trans, used, min_transmittance)
    if lit.numel():
        ids = used[lit]
        rgb_s = rgb_s.index_put((ids,), model.radiance(pts[ids], dirs[ids], grad_used[lit], feat_used[lit]))
    rgb_s = rgb_s.reshape(n_rays, n_samples, 3)
    unit = torch.nn.functional.normalize(grad, dim=-1).reshape(n_rays, n_samples, 3)
    if packed:  # one Triton kernel composites colour, depth and normal
        from fields.neus.compositing_triton import composite_packed

        offsets = torch.arange(n_rays + 1, device=alpha.device) * n_samples
        values = torch.cat([rgb_s, mids[..., None], unit], -1).reshape(-1, 7)
        comp, opacity = composite_packed(alpha.reshape(-1), values, offsets)
        rgb_w, depth_w, normal = comp[:, :3], comp[:, 3], comp[:, 4:]
        weights = alpha.new_zeros(n_rays, 0)
    else:
        weights = alpha * trans
        opacity = weights.sum(1)
        rgb_w, depth_w = (weights[..., None] * rgb_s).sum(1), (weights * mids).sum(1)
        normal = (weights[..., None] * unit).sum(1)
    rgb = rgb_w + (1.0 - opacity)[:, None] * model.background(d)
    depth = depth_w + (1.0 - opacity) * far
    return RenderOut(rgb, depth, opacity, weights, normal, grad_used, pts[used], extra_sdf, extra_grad)


def seen(trans: torch.Tensor | None, used: torch.Tensor, min_transmittance: float) -> torch.Tensor:
    """Positions in `used` (flat sample indices into trans (R, S), the transmittance in front of each
    sample) of the samples where it reaches min_transmittance: the others carry weight below it and
    get no colour (black), which moves a pixel by less than min_transmittance per sample. A third of
    the network's samples in a trained scene lie behind the surface. Without trans and on a GPU every
    sample keeps its colour: choosing them is a host sync."""
    if trans is None or trans.is_cuda or min_transmittance <= 0.0 or not used.numel():
        return torch.arange(used.numel(), device=used.device)
    return torch.nonzero(trans.detach().reshape(-1)[used] >= min_transmittance).squeeze(1)


def packed_compositing(t: torch.Tensor) -> bool:
    """Whether the Triton compositing kernel composites (CUDA with triton; tests patch this to run it
    on the CPU through Triton's interpreter). The PyTorch path otherwise."""
    if not t.is_cuda:
        return False
    from fields.neus import compositing_triton

    return compositing_triton.available()


@torch.no_grad()
def render_rays_inference(model: "NeuSModel", o: torch.Tensor, d: torch.Tensor, near: torch.Tensor,
                          far: torch.Tensor, n_samples: int, grid: OccupancyGrid | None = None,
                          min_weight: float = 1e-3) -> RenderOut:
    """Render for viewing (no training): opacity from the SDF at the section ends (NeuS's CDF
    difference, no gradient needed), then gradient, normal and colour only at the few sections
    whose weight reaches min_weight. Same image as render_rays for a trained (sharp) field, several
    times faster because most samples skip the backward pass and the colour network.
    """
    n_rays = o.shape[0]
    edges = grid.sample_edges(o, d, near, far, n_samples, False) if grid is not None else \
        stratified_edges(near, far, n_samples, False)
    weights = section_weights(model, o, d, edges, grid)
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    rows, cols = torch.nonzero(weights >= min_weight, as_tuple=True)
    rgb_s = torch.zeros(n_rays, n_samples, 3, device=o.device)
    unit = torch.zeros(n_rays, n_samples, 3, device=o.device)
    if rows.numel():
        x = o[rows] + d[rows] * mids[rows, cols][:, None]
        _, feat, grad = model.sdf.gradient(x, create_graph=False)
        rgb_s[rows, cols] = model.radiance(x, d[rows], grad, feat)
        unit[rows, cols] = torch.nn.functional.normalize(grad, dim=-1)
    opacity = weights.sum(1)
    rgb = (weights[..., None] * rgb_s).sum(1) + (1.0 - opacity)[:, None] * model.background(d)
    depth = (weights * mids).sum(1) + (1.0 - opacity) * far
    normal = (weights[..., None] * unit).sum(1)
    empty = torch.zeros(0, 3, device=o.device)
    return RenderOut(rgb, depth, opacity, weights, normal, empty, empty)


class NeuSModel(nn.Module):
    """Everything a NeuS reconstruction learns: SDF, colour, background and sharpness."""

    def __init__(self, sdf: SDFField, radiance: RadianceField, background: Background, sharpness: Sharpness) -> None:
        super().__init__()
        self.sdf, self.radiance, self.background, self.sharpness = sdf, radiance, background, sharpness
