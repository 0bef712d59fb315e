"""The SDF field's gradient: written out (encoding Jacobian times the MLP's chain) against autograd's
double backward of the forward, computed independently in float64 through the reference encoding."""

from __future__ import annotations

import copy

import pytest
import torch

from fields.encodings import hash_grid_kernels
from fields.encodings.hash_grid import HashGrid
from fields.neus.sdf_field import SDFField


def loss_of(sdf: torch.Tensor, feat: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    weights = torch.arange(feat.shape[1], dtype=feat.dtype)
    return (sdf**2).sum() + (feat * weights).sum() + ((grad.norm(dim=-1) - 1.0) ** 2).sum()


@pytest.mark.parametrize("depth", [1, 2])
def test_analytic_gradient_and_its_parameter_gradients_match_autograd_in_float64(depth):
    if hash_grid_kernels.load() is None:
        pytest.skip("no C compiler: the Jacobian kernels are not built and autograd's path runs")
    torch.manual_seed(0)
    enc = HashGrid(dim=3, n_levels=6, n_features=2, log2_hashmap_size=12, base_resolution=8, finest_resolution=128)
    field = SDFField(enc, hidden=32, depth=depth)
    with torch.no_grad():
        enc.params.uniform_(-0.3, 0.3)
        for lin in field.decoder.linears:
            lin.weight.add_(torch.randn_like(lin.weight) * 0.1)
    enc.set_active_levels(5)
    x = torch.rand(1500, 3) * 1.6 - 0.8
    assert field._analytic_gradient(x) is not None
    sdf, feat, grad = field.gradient(x, create_graph=True)
    grads = torch.autograd.grad(loss_of(sdf, feat, grad), list(field.parameters()))

    ref = copy.deepcopy(field).double()
    ref.encoding.use_kernels = False  # float64 and the reference encoding: autograd's double backward
    assert ref._analytic_gradient(x.double()) is None
    sdf_r, feat_r, grad_r = ref.gradient(x.double(), create_graph=True)
    grads_r = torch.autograd.grad(loss_of(sdf_r, feat_r, grad_r), list(ref.parameters()))
    for a, b in [(sdf, sdf_r), (feat, feat_r), (grad, grad_r), *zip(grads, grads_r)]:
        assert torch.allclose(a.double(), b, rtol=1e-3, atol=1e-4 * b.abs().max().item())


def test_gradient_without_a_graph_is_detached_and_the_points_get_none():
    torch.manual_seed(0)
    field = SDFField(HashGrid(dim=3, n_levels=4, n_features=2, log2_hashmap_size=12, base_resolution=8,
                              finest_resolution=64), hidden=16)
    x = torch.rand(50, 3, requires_grad=True)
    _, _, grad = field.gradient(x, create_graph=False)
    assert not grad.requires_grad and x.grad is None
    field.encoding.use_kernels = False  # autograd's gradient of the reference encoding
    _, _, grad_ref = field.gradient(x, create_graph=False)
    assert torch.allclose(grad, grad_ref, atol=1e-5)


@pytest.mark.parametrize("depth", [1, 2])
def test_distance_alone_equals_the_forward_first_output(depth):
    """depth 1 without gradients: the fused C pass (sdf_decoder.distance); otherwise the MLP's hidden
    layers and the output layer's first row."""
    torch.manual_seed(3)
    field = SDFField(HashGrid(dim=3, n_levels=4, n_features=2, log2_hashmap_size=12, base_resolution=8,
                              finest_resolution=64), hidden=16, depth=depth)
    with torch.no_grad():
        field.encoding.params.uniform_(-0.5, 0.5)
        for lin in field.decoder.linears:
            lin.weight.add_(torch.randn_like(lin.weight) * 0.2)
        x = torch.rand(300, 3) * 2.0 - 1.0
        assert torch.allclose(field.sdf(x), field(x)[0], atol=1e-5)
    assert torch.allclose(field.sdf(x), field(x)[0], atol=1e-5)  # with gradients wanted: the MLP's path
