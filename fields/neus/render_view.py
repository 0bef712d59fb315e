"""A whole camera view rendered from a trained model: RGB, depth, normals and opacity per pixel (used by
videos, evaluation, mesh culling and the viewer): sphere-traced by default, or volume-rendered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fields.errors import FieldsError
from fields.geometry.rays import camera_rays, pixel_grid, sphere_bounds
from fields.neus import RENDERERS
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.rendering import NeuSModel, render_rays_inference
from fields.neus.traced_render import render_rays_traced
from fields.scene import Camera


@dataclass
class ViewRender:
    rgb: np.ndarray  # (H, W, 3)
    depth: np.ndarray  # (H, W) distance along the ray, normalised frame
    normal: np.ndarray  # (H, W, 3) opacity-weighted world normals
    opacity: np.ndarray  # (H, W)


@torch.no_grad()
def render_image(model: NeuSModel, cam: Camera, R: np.ndarray, t: np.ndarray, n_samples: int = 64,
                 chunk: int = 65536, grid: OccupancyGrid | None = None, method: str = "traced") -> ViewRender:
    """A view in the normalised frame. method 'traced': sphere tracing with the volume renderer where
    tracing cannot settle a ray (traced_render); 'volume': the volume renderer for every ray. Both
    are fast with an occupancy grid."""
    if method not in RENDERERS:
        raise FieldsError(f"unknown renderer {method!r} ({', '.join(RENDERERS)})")
    render = render_rays_traced if method == "traced" else render_rays_inference
    device = next(model.parameters()).device
    o, d = camera_rays(cam, R, t, pixel_grid(cam.width, cam.height))
    o, d = torch.from_numpy(o).float(), torch.from_numpy(d).float()
    parts: dict[str, list[torch.Tensor]] = {"rgb": [], "depth": [], "normal": [], "opacity": []}
    for s in range(0, o.shape[0], chunk):
        oc, dc = o[s : s + chunk].to(device), d[s : s + chunk].to(device)
        near, far, _ = sphere_bounds(oc, dc)
        out = render(model, oc, dc, near, far, n_samples, grid=grid)
        for k in parts:
            parts[k].append(getattr(out, k).cpu())
    shape = (cam.height, cam.width)
    return ViewRender(*(torch.cat(parts[k]).reshape(*shape, -1).squeeze(-1).numpy() for k in parts))
