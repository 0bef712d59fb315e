"""A multiresolution dense feature grid: the hash grid without hashing, for 2-D (images) or 3-D."""

from __future__ import annotations

import math

import torch
from torch import nn

from fields.encodings.interpolation import grid_interpolate


class DenseGrid(nn.Module):
    """Levels from base to finest resolution (geometric), each a dense (res^d, F) table; output level-major."""

    def __init__(self, dim: int = 2, n_levels: int = 4, n_features: int = 4, base_resolution: int = 16,
                 finest_resolution: int = 128, init_scale: float = 1e-4) -> None:
        super().__init__()
        b = math.exp(math.log(finest_resolution / base_resolution) / max(n_levels - 1, 1))
        self.resolutions = [int(round(base_resolution * b**lvl)) for lvl in range(n_levels)]
        self.dim, self.n_features = dim, n_features
        self.tables = nn.ParameterList(
            nn.Parameter(torch.empty(r**dim, n_features).uniform_(-init_scale, init_scale)) for r in self.resolutions)

    @property
    def out_dim(self) -> int:
        return len(self.resolutions) * self.n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([grid_interpolate(t, x, r) for t, r in zip(self.tables, self.resolutions)], dim=-1)
