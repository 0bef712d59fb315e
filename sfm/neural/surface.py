"""The SDF whose zero level set holds the points: a fresh one, fitted to points, and which points
lie on it."""

from __future__ import annotations

import numpy as np
import torch

from fields.encodings.hash_grid import HashGrid, backward_to_parameters
from fields.neus.regularisers import eikonal_term, uniform_points
from fields.neus.sdf_field import SDFField
from fields.nn.adam import Adam
from sfm.neural.state import Reconstruction


def make_sdf(seed: int) -> SDFField:
    """A fresh SDF (hash grid and MLP), its initialisation drawn from torch's global seed set to seed."""
    torch.manual_seed(seed)
    enc = HashGrid(dim=3, n_levels=8, n_features=2, log2_hashmap_size=15, base_resolution=8, finest_resolution=128)
    return SDFField(enc, hidden=64)


def fit_sdf_to_points(sdf: SDFField, points: np.ndarray, steps: int, seed: int = 0, lr: float = 5e-3) -> None:
    """|f| on the points plus Eikonal: the surface through the sparse points (from the sphere init, or
    from the current surface after the points moved)."""
    gen = torch.Generator().manual_seed(seed)
    P = torch.tensor(points, dtype=torch.float32)
    opt = Adam(sdf.parameters(), lr=lr)
    for _ in range(steps):
        f, _, g = sdf.gradient(torch.cat([P, uniform_points(1024, gen, P.device)]), create_graph=True)
        loss = f[: len(P)].abs().mean() + 0.1 * eikonal_term(g)  # Eikonal on the points and uniform ones
        opt.zero_grad(set_to_none=True)
        backward_to_parameters(loss, opt)
        opt.step()


def near_level_set(rec: Reconstruction, tau: float) -> np.ndarray:
    """Per track: has a point and that point is within tau of the zero level set."""
    has = rec.has_point()
    near = np.zeros(len(rec.tracks), bool)
    if has.any():
        with torch.no_grad():
            f = rec.sdf.sdf(torch.tensor(rec.xyz[has], dtype=torch.float32)).abs().numpy()
        near[np.flatnonzero(has)] = f < tau
    return near
