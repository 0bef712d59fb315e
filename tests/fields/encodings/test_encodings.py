"""The encodings (fields/encodings/) against analytic cases and direct formulas: grid interpolation,
positional encoding and Fourier features, tri-planes, dense grids, spherical harmonics."""

from __future__ import annotations

import math

import pytest
import torch

from fields.encodings.dense_grid import DenseGrid
from fields.encodings.fourier import FourierFeatures, PositionalEncoding
from fields.encodings.interpolation import grid_interpolate
from fields.encodings.triplane import TriPlane


def test_grid_interpolation_is_exact_for_multilinear_functions_and_twice_differentiable():
    res = 9
    axis = torch.linspace(0, 1, res)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")  # table index = x + y * res
    table = (2 * gx + 3 * gy + gx * gy).reshape(-1, 1)
    x = torch.rand(50, 2, requires_grad=True)
    v = grid_interpolate(table, x, res)[:, 0]
    assert torch.allclose(v, 2 * x[:, 0] + 3 * x[:, 1] + x[:, 0] * x[:, 1], atol=1e-5)
    (g,) = torch.autograd.grad(v.sum(), x, create_graph=True)
    assert torch.allclose(g[:, 0], 2 + x[:, 1], atol=1e-4)
    g.sum().backward()


def test_positional_encoding_and_fourier_features_formulas():
    x = torch.tensor([[0.25, 0.5]])
    pe = PositionalEncoding(2, n_frequencies=2)(x)
    expected = [0.25, 0.5] + [math.sin(a) for a in (0.25 * math.pi, 0.5 * math.pi, 0.5 * math.pi, math.pi)] + \
        [math.cos(a) for a in (0.25 * math.pi, 0.5 * math.pi, 0.5 * math.pi, math.pi)]
    assert torch.allclose(pe[0], torch.tensor(expected), atol=1e-6)
    ff = FourierFeatures(2, n_frequencies=4096, sigma=3.0)
    assert ff.out_dim == 8192 and ff.B.std().item() == pytest.approx(3.0, rel=0.05)
    assert torch.allclose(ff(x)[:, :4096] ** 2 + ff(x)[:, 4096:] ** 2, torch.ones(1, 4096), atol=1e-5)


def test_triplane_sum_and_product_of_planes():
    tp = TriPlane(channels=2, resolution=5, reduce="sum")
    with torch.no_grad():
        tp.planes.zero_()
        tp.planes[0, :, 0] = 1.0  # xy plane constant 1 on channel 0
        tp.planes[2, :, 1] = 2.0  # yz plane constant 2 on channel 1
    out = tp(torch.rand(7, 3))
    assert torch.allclose(out, torch.tensor([1.0, 2.0]).expand(7, 2))
    prod = TriPlane(channels=1, resolution=5, reduce="product")
    with torch.no_grad():
        prod.planes[:] = torch.tensor([2.0, 3.0, 4.0])[:, None, None]
    assert torch.allclose(prod(torch.rand(3, 3)), torch.full((3, 1), 24.0))


def test_dense_grid_levels_are_geometric():
    g = DenseGrid(dim=2, n_levels=4, n_features=3, base_resolution=16, finest_resolution=128)
    assert g.resolutions == [16, 32, 64, 128] and g.out_dim == 12
    assert g(torch.rand(5, 2)).shape == (5, 12)


def test_spherical_harmonics_are_orthonormal_and_rotation_invariant_per_band():
    """The SH view encoding: orthonormal over the sphere (Fibonacci quadrature) and, by the addition
    theorem, each band's squared sum is (2l + 1) / 4 pi in every direction."""
    from fields.encodings.spherical_harmonics import real_sh

    n = 200_000
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = math.pi * (1.0 + 5**0.5) * i
    r = (1.0 - z * z).sqrt()
    d = torch.stack([r * phi.cos(), r * phi.sin(), z], 1)
    Y = real_sh(d, 4)
    gram = Y.T @ Y * 4.0 * math.pi / n
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=1e-5)
    for band in range(4):
        energy = (Y[:, band * band:(band + 1) ** 2] ** 2).sum(1)
        assert torch.allclose(energy, torch.full_like(energy, (2 * band + 1) / (4.0 * math.pi)), atol=1e-9)
