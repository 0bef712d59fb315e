"""Fitting a signed distance field to a mesh, then extracting it again (`fields fit sdf`).

Loss (IGR, Gropp et al. 2020): on surface samples the SDF is 0 and its gradient is the surface
normal; on near-surface and uniform samples its gradient has unit norm (Eikonal) and its value is
the signed distance to the nearest surface sample (sign from that sample's normal, so open meshes
with oriented faces fit too). The distance term keeps stray zero crossings out of empty space and
out of the interior: with IGR's terms alone, hash collisions leave floating blobs and the initial
sphere survives inside the object. The network
predicts a residual on top of a sphere's SDF (its last layer starts at zero), the geometric
initialisation for any decoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree
from torch import nn

from fields.encodings.hash_grid import backward_to_parameters
from fields.export.mesh import zero_level_set
from fields.geometry.volume import evaluate_on_grid
from fields.nn.builder import Field, resolve_spec
from fields.scene import Similarity

SDF_HASH = {"type": "hash", "n_levels": 8, "n_features": 2, "log2_hashmap_size": 16, "base_resolution": 16,
            "finest_resolution": 256}


def sdf_spec(name: str) -> dict:
    """The named field spec for 3-D SDF fitting: a smaller hash table than the image preset, and the
    RBF decoder on that hash grid (as GNF does in 3-D) instead of a dense 128^3 grid, whose 17 M
    parameters make every Adam step slow."""
    spec = resolve_spec(name)
    if spec["encoding"]["type"] == "hash" or spec["decoder"]["type"] == "rbf":
        spec["encoding"] = dict(SDF_HASH)
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


class SurfaceSamples:
    """Points and normals sampled on a mesh, and the signed distance to them.

    The distance of a query is to its nearest sample (exact up to the sample spacing); its sign is
    that of (x - p) . n at that sample p, so the target is right for watertight meshes and for open
    ones with consistently oriented faces. Queries far from the surface go to a coarse subset, since
    an exact search of the full set is slow there and the distance barely changes.
    """

    def __init__(self, mesh: trimesh.Trimesh, sim: Similarity, n: int = 200_000, seed: int = 0) -> None:
        pts, faces = trimesh.sample.sample_surface(mesh, n, seed=seed)
        self.points = torch.from_numpy(sim.apply(pts)).float()
        self.normals = torch.from_numpy(np.asarray(mesh.face_normals)[faces]).float()
        self.tree = cKDTree(self.points.numpy())
        self.coarse = np.random.default_rng(seed).choice(n, min(n, 5000), replace=False)
        self.coarse_tree = cKDTree(self.points.numpy()[self.coarse])

    def signed_distance(self, x: torch.Tensor, near: float = 0.1) -> torch.Tensor:
        xn = x.numpy()
        dist, idx = self.tree.query(xn, workers=-1, distance_upper_bound=near)
        far = np.isinf(dist)
        if far.any():
            dist[far], j = self.coarse_tree.query(xn[far], workers=-1)
            idx[far] = self.coarse[j]
        idx_t = torch.from_numpy(idx)
        side = torch.sign(((x - self.points[idx_t]) * self.normals[idx_t]).sum(-1))
        return torch.where(side == 0, 1.0, side) * torch.from_numpy(dist).float()


def fit_sdf(sdf: SphereResidualSDF, mesh: trimesh.Trimesh, seconds: float, max_steps: int = 100_000,
            batch: int = 4096, lr: float = 1e-3, normal_weight: float = 0.1, eikonal_weight: float = 0.1,
            distance_weight: float = 1.0, near_sigma: float = 0.02, resolution: int = 128, seed: int = 0) -> SDFFit:
    """Train for a time budget (or max_steps), then marching-cube the result back into the mesh's frame."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sim = unit_box(mesh)
    samples = SurfaceSamples(mesh, sim, seed=seed)
    opt = torch.optim.Adam(sdf.field.param_groups(lr), betas=(0.9, 0.99), eps=1e-15)
    t0, step = time.perf_counter(), 0
    while step < max_steps and time.perf_counter() - t0 < seconds:
        idx = torch.from_numpy(rng.integers(0, len(samples.points), batch))
        surf = samples.points[idx]
        off = off_surface_samples(surf[: batch // 2], batch // 2, near_sigma)
        target = samples.signed_distance(off)
        f_s, g_s = gradient(sdf, surf.clone())
        f_o, g_o = gradient(sdf, off)
        loss = f_s.abs().mean() + normal_weight * (g_s - samples.normals[idx]).norm(dim=-1).mean() \
            + eikonal_weight * ((torch.cat([g_s, g_o]).norm(dim=-1) - 1.0) ** 2).mean() \
            + distance_weight * (f_o - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        backward_to_parameters(loss, opt)
        opt.step()
        step += 1
    trained = time.perf_counter() - t0
    return SDFFit(extract(sdf, sim, resolution), trained, step)


def off_surface_samples(surface: torch.Tensor, n_free: int, sigma: float) -> torch.Tensor:
    """Surface points jittered by N(0, sigma) and by N(0, 10 sigma), plus uniform points in the box."""
    k = len(surface) // 2
    near = surface[:k] + sigma * torch.randn(k, 3)
    mid = surface[k:] + 10 * sigma * torch.randn(len(surface) - k, 3)
    return torch.cat([near, mid, torch.rand(n_free, 3) * 2.0 - 1.0]).clamp(-1.0, 1.0)


def extract(sdf: nn.Module, sim: Similarity, resolution: int) -> trimesh.Trimesh:
    """Marching cubes on [-1, 1]^3, mapped back by sim's inverse (empty when there is no surface)."""
    surface = zero_level_set(evaluate_on_grid(sdf, resolution).numpy())
    if surface is None:
        return trimesh.Trimesh()
    return trimesh.Trimesh(sim.inverse().apply(surface[0]), surface[1], process=False)
