"""An occupancy grid over [-1, 1]^3 built from the SDF: samples go near the surface and skip the network elsewhere.

Voxels whose coarse SDF is within `band` of zero are occupied. Points in free voxels take the coarse
SDF (trilinear from the grid), which is far from zero there, so their NeuS opacity stays near zero.
During training the grid is rebuilt every few steps from the current SDF, with a band that widens
while the NeuS density is still soft (low sharpness), so the surface can still move.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from fields.encodings import hash_grid_kernels
from fields.geometry.rays import sample_pdf
from fields.geometry.volume import evaluate_on_grid


class OccupancyGrid:
    def __init__(self, sdf: torch.Tensor, band: float) -> None:
        self.sdf = sdf  # (res, res, res) indexed [x, y, z] at voxel corners spanning [-1, 1]
        self.res = sdf.shape[0]
        self.band = band
        self.occupied_voxels = sdf.abs() < band
        self._dense: tuple | None = None  # the grid as a dense hash-grid level, for the C kernels

    @staticmethod
    @torch.no_grad()
    def from_sdf(sdf_fn: Callable[[torch.Tensor], torch.Tensor], res: int = 64, device: str | torch.device = "cpu",
                 band_voxels: float = 2.0) -> "OccupancyGrid":
        voxel = 2.0 / (res - 1)
        return OccupancyGrid(evaluate_on_grid(sdf_fn, res, device).to(device), band_voxels * voxel * 3**0.5)

    def coarse_sdf(self, x: torch.Tensor) -> torch.Tensor:
        """Trilinear SDF from the grid at points x (N, 3) in [-1, 1]^3 (clamped to it)."""
        if x.device.type == "cpu" and x.dtype == torch.float32 and hash_grid_kernels.load() is not None:
            return self._coarse_sdf_kernels(x)
        # grid_sample wants (z, y, x) volume order and (x, y, z) coordinates
        vol = self.sdf.permute(2, 1, 0)[None, None]
        g = x.clamp(-1.0, 1.0)[None, :, None, None, :]
        return F.grid_sample(vol, g, mode="bilinear", align_corners=True).reshape(-1)

    def _coarse_sdf_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """The same lookup in the hash grid's C kernels, twice as fast as grid_sample on the CPU: a dense
        level of resolution res, scale res - 1, whose table is the grid (x fastest) is trilinear
        interpolation; tcnn's half-voxel shift (position = u * scale + 0.5) is undone by moving the
        input half a voxel back."""
        res = self.res
        if self._dense is None:
            size = (res**3 + 7) // 8 * 8
            table = torch.zeros(size, 1)
            table[: res**3, 0] = self.sdf.permute(2, 1, 0).reshape(-1).float()
            level = {"scale": float(res - 1), "resolution": res, "size": size, "offset": 0, "hashed": False}
            self._dense = (table, hash_grid_kernels.LevelTables([level]), torch.ones(1))
        table, tables, mask = self._dense
        u = (x.clamp(-1.0, 1.0) + 1.0) * 0.5 - 0.5 / (res - 1)
        with torch.profiler.record_function("OccupancyGrid.coarse_sdf"):  # a name for profiles (a C call has none)
            return hash_grid_kernels.CKernels.forward(u, table, tables, mask, False).reshape(-1)

    def sample_edges(self, o: torch.Tensor, d: torch.Tensor, near: torch.Tensor, far: torch.Tensor, n_samples: int,
                     perturb: bool, n_probe: int = 128, floor: float = 0.01) -> torch.Tensor:
        """n_samples + 1 sorted section ends per ray, dense where the ray passes near the surface.

        The ray is probed at n_probe intervals against the coarse SDF; intervals that touch the band
        or cross zero get weight 1, the others `floor` (so some samples stay spread along the ray),
        and the ends are drawn by inverting the cumulative weight (jittered when perturb).
        """
        n_rays = o.shape[0]
        u = torch.linspace(0.0, 1.0, n_probe + 1, device=o.device)
        t = near[:, None] + (far - near)[:, None] * u[None]
        c = self.coarse_sdf((o[:, None] + d[:, None] * t[..., None]).reshape(-1, 3)).reshape(n_rays, n_probe + 1)
        hit = (c[:, :-1].abs() < self.band) | (c[:, 1:].abs() < self.band) | (c[:, :-1] * c[:, 1:] < 0)
        return sample_pdf(t, hit.float() + floor, n_samples, perturb)

    @torch.no_grad()
    def entry(self, o: torch.Tensor, d: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
              max_steps: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
        """Where each ray first reaches the band, and whether it does before far: the space before it
        is empty, a tracer may start there. Sphere tracing on the coarse SDF itself (a few grid lookups
        per ray, not a probe every voxel): steps of 0.8 (coarse - band), at least half a voxel, which
        cannot cross the band (it is several voxels wide). A ray that misses the sphere (near == far)
        is probed at that one point, as the volume renderer does (inside a solid, the tracer finds it
        starts inside)."""
        t, reached = near.clone(), torch.zeros_like(near, dtype=torch.bool)
        ids = torch.arange(near.shape[0], device=near.device)
        min_step = 1.0 / (self.res - 1)
        for _ in range(max_steps):
            if not ids.numel():
                break
            c = self.coarse_sdf(o[ids] + t[ids, None] * d[ids])
            inside = c < self.band
            reached[ids[inside]] = True
            t_next = t[ids] + torch.clamp_min(0.8 * (c - self.band), min_step)
            going = ~inside & (t_next < far[ids])
            t[ids[going]] = t_next[going]
            ids = ids[going]
        return t, reached

    def occupied(self, x: torch.Tensor) -> torch.Tensor:
        """Whether points fall where the coarse SDF is within the band of the surface."""
        return self.near_surface(self.coarse_sdf(x))

    def near_surface(self, coarse: torch.Tensor) -> torch.Tensor:
        """Whether coarse SDF values (from coarse_sdf) are within the band (to reuse them as well)."""
        return coarse.abs() < self.band

    def fraction(self) -> float:
        return float(self.occupied_voxels.float().mean())
