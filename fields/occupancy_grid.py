"""An occupancy grid over [-1, 1]^3 built from the SDF: samples far from the surface skip the network.

Voxels whose coarse SDF is within `band` of zero are occupied. Points in free voxels take the coarse
SDF (trilinear from the grid), which is far from zero there, so their NeuS opacity stays near zero.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from fields.volume import evaluate_on_grid


class OccupancyGrid:
    def __init__(self, sdf: torch.Tensor, band: float) -> None:
        self.sdf = sdf  # (res, res, res) indexed [x, y, z] at voxel corners spanning [-1, 1]
        self.res = sdf.shape[0]
        self.band = band
        self.occupied_voxels = sdf.abs() < band

    @staticmethod
    @torch.no_grad()
    def from_sdf(sdf_fn: Callable[[torch.Tensor], torch.Tensor], res: int = 64, device: str | torch.device = "cpu",
                 band_voxels: float = 2.0) -> "OccupancyGrid":
        voxel = 2.0 / (res - 1)
        return OccupancyGrid(evaluate_on_grid(sdf_fn, res, device).to(device), band_voxels * voxel * 3**0.5)

    def coarse_sdf(self, x: torch.Tensor) -> torch.Tensor:
        """Trilinear SDF from the grid at points x (N, 3) in [-1, 1]^3."""
        # grid_sample wants (z, y, x) volume order and (x, y, z) coordinates
        vol = self.sdf.permute(2, 1, 0)[None, None]
        g = x.clamp(-1.0, 1.0)[None, :, None, None, :]
        return F.grid_sample(vol, g, mode="bilinear", align_corners=True).reshape(-1)

    def occupied(self, x: torch.Tensor) -> torch.Tensor:
        """Whether points fall where the coarse SDF is within the band of the surface."""
        return self.coarse_sdf(x).abs() < self.band

    def fraction(self) -> float:
        return float(self.occupied_voxels.float().mean())
