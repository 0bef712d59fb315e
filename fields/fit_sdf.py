"""Fitting a signed distance field to a mesh, then extracting it again (`fields fit sdf`).

Loss (IGR, Gropp et al. 2020): on surface samples the SDF is 0 and its gradient is the surface
normal; on uniform samples in the box its gradient has unit norm (Eikonal). No signed-distance
queries are needed, so meshes that are not watertight fit too. The network predicts a residual on
top of a sphere's SDF (its last layer starts at zero), the geometric initialisation for any decoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from torch import nn

from fields.field import Field, resolve_spec
from fields.mesh_export import zero_level_set
from fields.scene import Similarity
from fields.volume import evaluate_on_grid


def sdf_spec(name: str) -> dict:
    """The named field spec for 3-D SDF fitting: the hash grid gets a smaller table than the image preset."""
    spec = resolve_spec(name)
    if spec["encoding"]["type"] == "hash":
        spec["encoding"].update(n_levels=8, log2_hashmap_size=16, finest_resolution=256)
    return spec


class SphereResidualSDF(nn.Module):
    """f(x) = field(x01) + |x| - radius for x in [-1, 1]^3, where the field starts at zero."""

    def __init__(self, field: Field, radius: float = 0.5) -> None:
        super().__init__()
        self.field, self.radius = field, radius
        last = _last_linear(field.decoder)
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.field((x + 1.0) * 0.5)[:, 0] + x.norm(dim=-1) - self.radius


def _last_linear(module: nn.Module) -> nn.Linear:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1]


def unit_box(mesh: trimesh.Trimesh, half_extent: float = 0.8) -> Similarity:
    """The similarity putting the mesh's bounding box centred in [-half_extent, half_extent]^3."""
    lo, hi = mesh.bounds
    s = 2.0 * half_extent / float((hi - lo).max())
    return Similarity(s, np.eye(3), -s * (lo + hi) / 2.0)


@dataclass
class SDFFit:
    mesh: trimesh.Trimesh  # extracted surface in the input mesh's frame
    seconds: float  # training time
    steps: int


def gradient(sdf: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.requires_grad_(True)
    f = sdf(x)
    (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
    return f, g


def fit_sdf(sdf: SphereResidualSDF, mesh: trimesh.Trimesh, seconds: float, max_steps: int = 100_000,
            batch: int = 4096, lr: float = 1e-3, normal_weight: float = 0.1, eikonal_weight: float = 0.1,
            resolution: int = 128, seed: int = 0) -> SDFFit:
    """Train for a time budget (or max_steps), then marching-cube the result back into the mesh's frame."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sim = unit_box(mesh)
    pool = 200_000
    pts, faces = trimesh.sample.sample_surface(mesh, pool, seed=seed)
    surf = torch.from_numpy(sim.apply(pts)).float()
    normals = torch.from_numpy(np.asarray(mesh.face_normals)[faces]).float()
    opt = torch.optim.Adam(sdf.field.param_groups(lr), betas=(0.9, 0.99), eps=1e-15)
    t0, step = time.perf_counter(), 0
    while step < max_steps and time.perf_counter() - t0 < seconds:
        idx = torch.from_numpy(rng.integers(0, pool, batch))
        free = torch.rand(batch // 2, 3) * 2.0 - 1.0
        f_s, g_s = gradient(sdf, surf[idx].clone())
        _, g_f = gradient(sdf, free)
        loss = f_s.abs().mean() + normal_weight * (g_s - normals[idx]).norm(dim=-1).mean() \
            + eikonal_weight * ((torch.cat([g_s, g_f]).norm(dim=-1) - 1.0) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
    trained = time.perf_counter() - t0
    return SDFFit(extract(sdf, sim, resolution), trained, step)


def extract(sdf: nn.Module, sim: Similarity, resolution: int) -> trimesh.Trimesh:
    """Marching cubes on [-1, 1]^3, mapped back by sim's inverse (empty when there is no surface)."""
    surface = zero_level_set(evaluate_on_grid(sdf, resolution).numpy())
    if surface is None:
        return trimesh.Trimesh()
    return trimesh.Trimesh(sim.inverse().apply(surface[0]), surface[1], process=False)
