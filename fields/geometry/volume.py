"""A scalar function evaluated on a regular grid over [-1, 1]^3, in chunks (one grid, no seams)."""

from __future__ import annotations

from typing import Callable

import torch


@torch.no_grad()
def evaluate_on_grid(fn: Callable[[torch.Tensor], torch.Tensor], resolution: int,
                     device: str | torch.device = "cpu", chunk: int = 65536) -> torch.Tensor:
    """fn at the resolution^3 grid vertices, indexed [x, y, z], on the CPU; vertex spacing 2 / (resolution - 1).
    Values only: fn runs without gradients (no graph is kept, and a field may take a faster path)."""
    axis = torch.linspace(-1.0, 1.0, resolution)
    pts = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    with torch.no_grad():
        vals = torch.cat([fn(pts[s : s + chunk].to(device)).cpu() for s in range(0, pts.shape[0], chunk)])
    return vals.reshape(resolution, resolution, resolution)
