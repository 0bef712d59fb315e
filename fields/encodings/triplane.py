"""Tri-plane (EG3D, K-planes): three axis-aligned feature planes, bilinearly sampled, summed or multiplied."""

from __future__ import annotations

import torch
from torch import nn

from fields.encodings.interpolation import grid_interpolate

PLANES = ((0, 1), (0, 2), (1, 2))


class TriPlane(nn.Module):
    """Inputs in [0, 1]^3; output (N, channels)."""

    def __init__(self, channels: int = 16, resolution: int = 128, reduce: str = "sum", init_scale: float = 0.1) -> None:
        super().__init__()
        if reduce not in ("sum", "product"):
            raise ValueError(f"reduce must be sum or product, not {reduce!r}")
        self.channels, self.resolution, self.reduce = channels, resolution, reduce
        # product planes start near 1 so the product is not near zero; sum planes near 0
        init = torch.randn(3, resolution * resolution, channels) * init_scale
        self.planes = nn.Parameter(init + (1.0 if reduce == "product" else 0.0))

    @property
    def out_dim(self) -> int:
        return self.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for p, axes in enumerate(PLANES):
            f = grid_interpolate(self.planes[p], x[:, list(axes)], self.resolution)
            out = f if out is None else (out + f if self.reduce == "sum" else out * f)
        return out
