"""An SDF field: coordinates plus an encoding into an MLP that outputs a distance and a geometry feature."""

from __future__ import annotations

import torch
from torch import nn

from fields.encodings.hash_grid import HashGrid
from fields.mlp import MLP, sphere_init


class SDFField(nn.Module):
    """f(x) for x in the normalised frame ([-1, 1]^3); starts as the sphere |x| - init_radius."""

    def __init__(self, encoding: nn.Module | None = None, hidden: int = 64, depth: int = 1, n_features: int = 15,
                 init_radius: float = 0.5) -> None:
        super().__init__()
        self.encoding = encoding if encoding is not None else HashGrid(dim=3, n_levels=8, n_features=2,
                                                                        log2_hashmap_size=16, base_resolution=16,
                                                                        finest_resolution=256)
        self.n_features = n_features
        self.mlp = MLP(3 + self.encoding.out_dim, 1 + n_features, hidden, depth, act="softplus")
        sphere_init(self.mlp, n_coords=3, radius=init_radius)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sdf (N,), feature (N, n_features))."""
        h = torch.cat([x, self.encoding((x + 1.0) * 0.5)], dim=-1)
        out = self.mlp(h)
        return out[:, 0], out[:, 1:]

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[0]

    def gradient(self, x: torch.Tensor, create_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sdf, feature, d sdf / dx), keeping the graph for an Eikonal loss when asked."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            sdf, feat = self.forward(x)
            (g,) = torch.autograd.grad(sdf.sum(), x, create_graph=create_graph)
        return sdf, feat, g
