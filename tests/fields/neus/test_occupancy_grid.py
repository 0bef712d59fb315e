"""The occupancy grid's coarse SDF: trilinear interpolation of the grid, exact on a linear function,
the same through the C kernels as through grid_sample."""

from __future__ import annotations

import pytest
import torch

from fields.encodings import hash_grid_kernels
from fields.geometry.volume import evaluate_on_grid
from fields.neus.occupancy_grid import OccupancyGrid


def plane(x: torch.Tensor) -> torch.Tensor:
    return 0.3 * x[:, 0] - 0.5 * x[:, 1] + 0.2 * x[:, 2] + 0.1


@pytest.mark.parametrize("kernels", [True, False])
def test_coarse_sdf_reproduces_a_linear_function_inside_and_clamps_outside(kernels, monkeypatch):
    if kernels and hash_grid_kernels.load() is None:
        pytest.skip("no C compiler: grid_sample is the only path")
    if not kernels:
        monkeypatch.setattr(hash_grid_kernels, "load", lambda: None)
    grid = OccupancyGrid(evaluate_on_grid(plane, 33), 0.1)
    torch.manual_seed(0)
    x = torch.rand(5000, 3) * 2.0 - 1.0
    assert torch.allclose(grid.coarse_sdf(x), plane(x), atol=1e-5)
    outside = torch.tensor([[1.5, -2.0, 0.3], [-1.2, 0.0, 3.0]])
    assert torch.allclose(grid.coarse_sdf(outside), plane(outside.clamp(-1.0, 1.0)), atol=1e-5)


def test_kernel_lookup_equals_grid_sample_on_a_random_grid(monkeypatch):
    if hash_grid_kernels.load() is None:
        pytest.skip("no C compiler: grid_sample is the only path")
    torch.manual_seed(1)
    grid = OccupancyGrid(torch.randn(20, 20, 20), 0.1)
    x = torch.rand(20000, 3) * 2.2 - 1.1
    fast = grid.coarse_sdf(x)
    monkeypatch.setattr(hash_grid_kernels, "load", lambda: None)
    assert torch.allclose(fast, grid.coarse_sdf(x), atol=1e-5)
