"""Rendering a trained field by sphere tracing: the viewer, videos, evaluation and mesh culling.

A trained NeuS field is nearly opaque: volume rendering puts almost all of a ray's weight at the
first zero crossing of its SDF. Tracing the SDF to that crossing costs a few SDF evaluations per ray
(starting where the occupancy grid's band begins, so empty space costs nothing), and the gradient
and colour networks then run once per pixel instead of at every section with weight. The rays
tracing cannot settle go to the volume renderer (render_rays_inference):
- those that pass within `tau` of the surface without crossing it, where the density's opacity is
  partial (silhouettes, thin or semi-transparent parts), before a hit or on the way out;
- those that graze an edge (the SDF just behind the crossing is not well inside);
- those that start inside the surface (their opacity depends on how deep they go);
- those still marching after max_steps, and the last few marching.
`tau` follows the learned sharpness s (the density's opacity past distance 5 / s is below e^-5):
while the field is still soft (early in training, in the viewer) most rays go to the volume
renderer, and the image is the volume renderer's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fields.geometry.sphere_tracing import SDFFn
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.rendering import NeuSModel, RenderOut, render_rays_inference


@dataclass
class SurfaceTrace:
    depth: torch.Tensor  # (R,) distance to the first crossing (where hit)
    hit: torch.Tensor  # (R,) bool: a crossing was found and the ray passed nothing closer than tau before it
    unsettled: torch.Tensor  # (R,) bool: the volume renderer must decide (near pass, out of steps)
    inside: torch.Tensor  # (R,) bool: the ray starts inside the surface


def refine_crossing(sdf: SDFFn, o: torch.Tensor, d: torch.Tensor, a: torch.Tensor, fa: torch.Tensor,
                    b: torch.Tensor, fb: torch.Tensor, iters: int) -> torch.Tensor:
    """The zero of the SDF between a (fa > 0) and b (fb < 0) along each ray, by regula falsi in its
    Illinois form (an end kept twice in a row has its value halved, so both ends move)."""
    t, last = b, None
    for _ in range(iters):
        t = a - fa * (b - a) / (fb - fa).clamp_max(-1e-12)
        f = sdf(o + t[:, None] * d)
        pos = f > 0
        if last is not None:
            fb = torch.where(pos & last, fb * 0.5, fb)  # b kept again
            fa = torch.where(~pos & ~last, fa * 0.5, fa)  # a kept again
        a, fa = torch.where(pos, t, a), torch.where(pos, f, fa)
        b, fb = torch.where(pos, b, t), torch.where(pos, fb, f)
        last = pos
    return t


@torch.no_grad()
def trace_to_surface(sdf: SDFFn, o: torch.Tensor, d: torch.Tensor, start: torch.Tensor, far: torch.Tensor,
                     tau: float, max_steps: int = 64, eps: float = 5e-4, step_scale: float = 0.95,
                     max_jump: float = 1.5, refine: int = 6, tail: float = 0.005) -> SurfaceTrace:
    """March each ray from start towards far by the SDF value, evaluating only the rays still marching,
    until fewer than `tail` of them are left (those are unsettled).

    A step that lands inside (f < -eps) is brought back onto the crossing by regula falsi between it and
    the step before; |f| <= eps is a hit where it stands. A ray whose SDF came within tau of zero and
    then grew again passed the surface closely: unsettled, whatever follows."""
    n = o.shape[0]
    flags = lambda: torch.zeros(n, dtype=torch.bool, device=o.device)  # noqa: E731
    depth, hit, unsettled, starts_inside, near_pass = far.clone(), flags(), flags(), flags(), flags()
    ids = torch.arange(n, device=o.device)
    t, t_prev = start.clone(), start.clone()
    f_prev = torch.full_like(start, float("inf"))
    brackets = []  # (rays, t before, f before, t inside, f inside) of each step's overshoots
    for step in range(max_steps):
        if ids.numel() <= tail * n:
            break
        oi, di = o[ids], d[ids]
        f = sdf(oi + t[:, None] * di)
        near_pass = near_pass | ((f_prev < tau) & (f > f_prev))
        inside = f < -eps
        if step == 0:
            starts_inside[ids[inside]] = True
        else:
            c = torch.nonzero(inside & ~near_pass).squeeze(1)
            brackets.append((ids[c], t_prev[c], f_prev[c], t[c], f[c]))  # refined together after the march
            unsettled[ids[inside & near_pass]] = True
        conv = (f.abs() <= eps) & ~inside
        good = conv & ~near_pass
        depth[ids[good]], hit[ids[good]] = t[good], True
        unsettled[ids[conv & near_pass]] = True
        # approaching the surface, the secant through the last two steps points at the crossing: up to
        # max_jump times f ahead (an overshoot is caught above and refined), never less than a safe step;
        # a jump past far stops at far, so a crossing just before it is still seen
        rate = (f_prev - f) / (t - t_prev).clamp_min(1e-12)
        safe = t + step_scale * f
        gone = safe > far[ids]
        t_next = torch.minimum(torch.maximum(safe, t + torch.minimum(f / rate.clamp_min(1e-12), max_jump * f)), far[ids])
        unsettled[ids[gone & near_pass]] = True
        going = ~(inside | conv | gone)
        ids, t_prev, f_prev = ids[going], t[going], f[going]
        t, near_pass = t_next[going], near_pass[going]
    unsettled[ids] = True  # out of steps, or the last few (each step costs as much in overhead as in work)
    if brackets:  # one batch for every overshoot: refine's few evaluations per step cost more in overhead than work
        r, a, fa, b, fb = (torch.cat(parts) for parts in zip(*brackets))
        depth[r] = refine_crossing(sdf, o[r], d[r], a, fa, b, fb, refine)
        hit[r] = True
    return SurfaceTrace(depth, hit, unsettled, starts_inside)


@torch.no_grad()
def render_rays_traced(model: NeuSModel, o: torch.Tensor, d: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
                       n_samples: int, grid: OccupancyGrid | None = None, max_steps: int = 64) -> RenderOut:
    """Render for viewing: colour once per ray at the traced surface, the volume renderer for the rest.

    RenderOut.weights is empty (R, 0) and gradients / points are empty: nothing here trains."""
    n = o.shape[0]
    s = float(model.sharpness())
    if grid is not None:
        start, reach = grid.entry(o, d, near, far)
    else:
        start, reach = near, torch.ones_like(near, dtype=torch.bool)
    rgb = model.background(d).clone()
    depth, opacity = far.clone(), torch.zeros(n, device=o.device)
    normal = torch.zeros(n, 3, device=o.device)
    r = torch.nonzero(reach).squeeze(1)
    trace = trace_to_surface(model.sdf.sdf, o[r], d[r], start[r], far[r], 5.0 / s, max_steps)
    h, t_hit = r[trace.hit], trace.depth[trace.hit]
    x = o[h] + t_hit[:, None] * d[h]
    _, feat, grad = model.sdf.gradient(x, create_graph=False)
    # a solid hit: the SDF a little behind the crossing (8 / s in SDF terms, 8 / (s cos) in depth) is well
    # inside; otherwise the ray grazed an edge, and what lies behind shows through (volume renderer)
    cos = (-(grad * d[h]).sum(-1) / grad.norm(dim=-1).clamp_min(1e-9)).clamp(0.05, 1.0)
    behind = model.sdf.sdf(o[h] + (t_hit + (8.0 / s / cos).clamp_max(0.25))[:, None] * d[h])
    solid = behind < -3.0 / s
    h, x, feat, grad = h[solid], x[solid], feat[solid], grad[solid]
    rgb[h] = model.radiance(x, d[h], grad, feat)
    depth[h], opacity[h] = t_hit[solid], 1.0
    normal[h] = torch.nn.functional.normalize(grad, dim=-1)
    # rays that start inside (a camera inside, or the sphere's boundary cutting through a solid) are
    # left to the volume renderer: their opacity depends on how deep they go
    u = torch.cat([r[trace.unsettled], r[trace.hit][~solid], r[trace.inside]])
    if u.numel():
        # half the sections: these rays are a tenth of a frame but were half its time; on the demo's held-out
        # views this cost 0.05-0.1 dB against the full count
        vol = render_rays_inference(model, o[u], d[u], near[u], far[u], max(n_samples // 2, 32), grid)
        rgb[u], depth[u], opacity[u], normal[u] = vol.rgb, vol.depth, vol.opacity, vol.normal
    empty = torch.zeros(0, 3, device=o.device)
    return RenderOut(rgb, depth, opacity, torch.zeros(n, 0, device=o.device), normal, empty, empty)
