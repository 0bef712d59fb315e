"""N-linear interpolation in a dense grid by gathers: differentiable twice, unlike grid_sample."""

from __future__ import annotations

import torch


def corner_offsets(dim: int, device: torch.device | None = None) -> torch.Tensor:
    """(2^d, d) 0/1 offsets of a cell's corners, dimension 0 fastest."""
    return torch.tensor([[(c >> k) & 1 for k in range(dim)] for c in range(2**dim)], dtype=torch.int64, device=device)


def corner_weights(frac: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """N-linear weights (N, 2^d) of each cell corner from fractional positions (N, d).

    The product over d is written out: Tensor.prod's backward checks for zeros (a host sync)
    and its double backward runs cumprod scans, which on a GPU cost more than the whole encoding.
    """
    c = corners.to(frac.dtype)[None]
    f = frac[:, None, :]
    per_axis = f * c + (1.0 - f) * (1.0 - c)  # (N, 2^d, d)
    w = per_axis[..., 0]
    for k in range(1, per_axis.shape[-1]):
        w = w * per_axis[..., k]
    return w


def grid_interpolate(table: torch.Tensor, x: torch.Tensor, res: int) -> torch.Tensor:
    """Values at x in [0, 1]^d from a table (res^d, C) of grid-vertex values (vertex k at k / (res - 1))."""
    dim = x.shape[-1]
    pos = x.clamp(0.0, 1.0) * (res - 1)
    base = torch.floor(pos).clamp(max=res - 2)
    frac = pos - base
    corners = corner_offsets(dim, x.device)
    c = base.to(torch.int64)[:, None, :] + corners[None]  # (N, 2^d, d)
    strides = torch.tensor([res**k for k in range(dim)], dtype=torch.int64, device=x.device)
    idx = (c * strides).sum(-1)
    w = corner_weights(frac, corners)
    return (w[..., None] * table[idx]).sum(1)
