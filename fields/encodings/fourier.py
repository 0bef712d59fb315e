"""Fourier features (Tancik et al. 2020) and NeRF's positional encoding."""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierFeatures(nn.Module):
    """[sin(2 pi B x), cos(2 pi B x)] with B ~ N(0, sigma^2), fixed (a buffer, not trained)."""

    def __init__(self, in_dim: int, n_frequencies: int = 128, sigma: float = 10.0, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.sigma = sigma
        self.register_buffer("B", torch.randn(n_frequencies, in_dim, generator=g) * sigma)

    @property
    def out_dim(self) -> int:
        return 2 * self.B.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = 2.0 * math.pi * x @ self.B.T
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class PositionalEncoding(nn.Module):
    """NeRF: x, then sin(2^k pi x), cos(2^k pi x) for k < n_frequencies."""

    def __init__(self, in_dim: int, n_frequencies: int = 10, include_input: bool = True) -> None:
        super().__init__()
        self.in_dim, self.include_input = in_dim, include_input
        self.register_buffer("freqs", (2.0 ** torch.arange(n_frequencies)) * math.pi)

    @property
    def out_dim(self) -> int:
        return self.in_dim * (2 * self.freqs.numel() + int(self.include_input))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = (x[..., None] * self.freqs).flatten(-2)  # (N, d * F), dimension-major
        parts = [x] if self.include_input else []
        return torch.cat(parts + [torch.sin(proj), torch.cos(proj)], dim=-1)
