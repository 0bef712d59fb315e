"""FreSh (Kania et al. 2025): pick an encoding's frequency hyperparameter before training, by matching
the spectrum of the untrained network's output to the target's.

Spectrum of an image-like signal (H, W, C): |FFT2| summed over channels, non-negative frequencies
summed along equal-frequency diagonals (i + j = k), the DC bin dropped, the first `bins` bins kept,
normalised to sum 1. Distance: 1-D Wasserstein (the L1 distance between cumulative sums).
For each candidate, the distance is averaged over `inits` random initialisations; the smallest wins.

As in the paper, target and outputs are compared on a square grid (the target resized to it). The
paper crops the spectrum to 128 bins at 512 px; at the few hundred pixels we fit on a CPU, the
crop must reach further (3/4 of the side, nearly the whole diagonal range) or it favours low
frequencies (benchmarks/kodak_fit.py measures the choice). The untrained networks are evaluated on
side^2 points, `inits` times per candidate: that is the cost.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from fields.nn.builder import Field, build_field


def spectrum(signal: np.ndarray | torch.Tensor, bins: int = 64) -> np.ndarray:
    """Normalised 1-D spectrum of an (H, W, C) signal."""
    x = torch.as_tensor(np.asarray(signal, dtype=np.float32))
    mag = torch.fft.fft2(x.permute(2, 0, 1)).abs().sum(0)  # (H, W)
    h, w = mag.shape
    quad = mag[: (h + 1) // 2, : (w + 1) // 2]
    i, j = torch.meshgrid(torch.arange(quad.shape[0]), torch.arange(quad.shape[1]), indexing="ij")
    diag = torch.zeros(quad.shape[0] + quad.shape[1] - 1).index_add_(0, (i + j).reshape(-1), quad.reshape(-1))
    s = diag[1 : bins + 1].numpy().astype(np.float64)
    return s / max(s.sum(), 1e-12)


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between two histograms on the same unit-spaced bins."""
    n = max(len(a), len(b))
    a, b = np.pad(a, (0, n - len(a))), np.pad(b, (0, n - len(b)))
    return float(np.abs(np.cumsum(a) - np.cumsum(b)).sum())


@dataclass
class FreshChoice:
    value: float
    distances: dict[float, float]


@torch.no_grad()
def untrained_output(field: Field, coords: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    return field(coords).reshape(*shape, -1).numpy()


def fresh_select(target: np.ndarray, candidates: list[float], make_field: Callable[[float, int], Field],
                 inits: int = 3, probe_size: int = 256, bins: int | None = None) -> FreshChoice:
    """The candidate whose untrained outputs' spectrum is closest to the target's."""
    from fields.fit.image import pixel_coordinates
    from fields.images import resize

    side = min(probe_size, *target.shape[:2])
    bins = bins or max(3 * side // 4, 4)
    square = target if target.shape[:2] == (side, side) else resize(target, (side, side))
    coords = pixel_coordinates(side, side)
    ref = spectrum(square, bins)
    distances = {}
    for value in candidates:
        d = [wasserstein_1d(spectrum(untrained_output(make_field(value, seed), coords, (side, side)), bins), ref)
             for seed in range(inits)]
        distances[value] = float(np.mean(d))
    return FreshChoice(min(distances, key=distances.get), distances)


def fourier_sigma_maker(spec: dict, in_dim: int, out_dim: int) -> Callable[[float, int], Field]:
    """make_field(sigma, seed) for a spec whose encoding is Fourier features."""
    def make(sigma: float, seed: int) -> Field:
        s = copy.deepcopy(spec)
        s["encoding"]["sigma"] = sigma
        s["encoding"]["seed"] = seed
        torch.manual_seed(seed)
        return build_field(s, in_dim, out_dim)
    return make


def hash_finest_maker(spec: dict, in_dim: int, out_dim: int) -> Callable[[float, int], Field]:
    """make_field(finest_resolution, seed) for a spec whose encoding is a hash grid.

    Untrained hash tables are U(-1e-4, 1e-4), too small to show a spectrum, so for this probe they
    are drawn U(-1, 1): the spectrum's shape, not its scale, is what is compared.
    """
    def make(finest: float, seed: int) -> Field:
        s = copy.deepcopy(spec)
        s["encoding"]["finest_resolution"] = int(finest)
        torch.manual_seed(seed)
        f = build_field(s, in_dim, out_dim)
        with torch.no_grad():
            f.encoding.params.uniform_(-1.0, 1.0)
        return f
    return make
