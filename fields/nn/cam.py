"""Coordinate-Aware Modulation (CAM, Lee et al. 2024): an MLP whose hidden features are scaled and shifted
by values bilinearly sampled from small grids over the input coordinates.

After each hidden linear layer: normalise per sample (zero mean, unit variance over features), then
h * gamma(c) + beta(c), then the activation. gamma and beta are one scalar per grid vertex, shared
by all features of the layer (channels > 1 gives each group of features its own), so a 32 x 32 grid
per layer adds about 3 % to a 256-wide MLP. The grids start at gamma = 1, beta = 0 and are trained at
10x the network's learning rate (Field.param_groups).
"""

from __future__ import annotations

import torch
from torch import nn

from fields.encodings.interpolation import grid_interpolate
from fields.nn.mlp import MLP


class CAMMLP(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: int = 64, depth: int = 2, act: str = "relu",
                 coord_dims: tuple[int, ...] = (0, 1), grid_resolution: int = 32, channels: int = 1,
                 normalise: bool = True) -> None:
        super().__init__()
        self.mlp = MLP(in_dim, out_dim, hidden, depth, act)
        self.coord_dims, self.res, self.normalise = list(coord_dims), grid_resolution, normalise
        cells = grid_resolution ** len(coord_dims)
        if hidden % channels:
            raise ValueError(f"hidden width {hidden} is not a multiple of CAM channels {channels}")
        self.repeat = hidden // channels
        self.gammas = nn.ParameterList(nn.Parameter(torch.ones(cells, channels)) for _ in range(depth))
        self.betas = nn.ParameterList(nn.Parameter(torch.zeros(cells, channels)) for _ in range(depth))

    def forward(self, h: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        # one interpolation for every layer's gamma and beta (they share the grid and the weights)
        table = torch.cat([torch.cat([g, b], dim=-1) for g, b in zip(self.gammas, self.betas)], dim=-1)
        mod = grid_interpolate(table, coords[:, self.coord_dims], self.res)
        ch = self.gammas[0].shape[1]
        last = len(self.mlp.linears) - 1
        for i, lin in enumerate(self.mlp.linears):
            h = lin(h)
            if i == last:
                break
            if self.normalise:
                h = (h - h.mean(-1, keepdim=True)) / torch.sqrt(h.var(-1, unbiased=False, keepdim=True) + 1e-5)
            gamma, beta = mod[:, 2 * i * ch : (2 * i + 1) * ch], mod[:, (2 * i + 1) * ch : (2 * i + 2) * ch]
            if ch == 1:
                h = torch.addcmul(beta, h, gamma)
            else:
                h = h * gamma.repeat_interleave(self.repeat, dim=-1) + beta.repeat_interleave(self.repeat, dim=-1)
            h = self.mlp.act(h)
        return h

    def grid_parameters(self) -> list[nn.Parameter]:
        return list(self.gammas) + list(self.betas)
