"""The fused SDF decoder (matrix products in PyTorch, elementwise passes in C) against the same
function written in float64 PyTorch operations, differentiated by autograd: values, and the
gradients of a loss on the output and the SDF gradient for h, the encoding's Jacobian and the weights."""

from __future__ import annotations

import pytest
import torch

from fields.nn import sdf_decoder
from fields.nn.softplus import softplus


def reference(h, jac, W1, b1, W2, b2, beta, dim, jscale):
    """out = W2 softplus(W1 h + b1) + b2 and g = d out[0] / d x_raw + jscale J^T d out[0] / d encoding
    (h = (x_raw, encoding)), through autograd's own double backward."""
    x, enc = h[:, :dim], h[:, dim:]
    z = torch.nn.functional.linear(torch.cat([x, enc], 1), W1, b1)
    out = torch.nn.functional.linear(softplus(z, beta), W2, b2)
    gx, genc = torch.autograd.grad(out[:, 0].sum(), (x, enc), create_graph=True)
    return out, gx + jscale * torch.einsum("nde,ne->nd", jac, genc)


@pytest.mark.parametrize("n,hidden,e", [(257, 64, 16), (33, 24, 6)])
def test_values_and_gradients_match_a_float64_autograd_reference(n, hidden, e):
    if sdf_decoder.load() is None:
        pytest.skip("no C compiler: the fused passes are not built and SDFField's autograd form runs")
    torch.manual_seed(0)
    dim, beta = 3, 100.0
    h = torch.randn(n, dim + e) * 0.3
    jac = torch.randn(n, dim, e)
    W1, b1 = torch.randn(hidden, dim + e) * 0.4, torch.randn(hidden) * 0.05
    W2, b2 = torch.randn(1 + 5, hidden) * 0.3, torch.randn(1 + 5) * 0.1
    leaves32 = [t.clone().requires_grad_(True) for t in (h, jac, W1, b1, W2, b2)]
    leaves64 = [t.double().requires_grad_(True) for t in (h, jac, W1, b1, W2, b2)]
    out, g = sdf_decoder.SoftplusSDFDecoder.apply(*leaves32, beta, dim, 0.5)
    out_r, g_r = reference(*leaves64, beta, dim, 0.5)
    for a, b in ((out, out_r), (g, g_r)):
        assert torch.allclose(a.double(), b, rtol=1e-4, atol=1e-4 * b.abs().max().item())

    def loss(o, gr):
        w = torch.linspace(0.5, 1.5, o.shape[1], dtype=o.dtype)
        return (o * w).sum() + ((gr.norm(dim=-1) - 1.0) ** 2).sum()

    grads = torch.autograd.grad(loss(out, g), leaves32)
    grads_r = torch.autograd.grad(loss(out_r, g_r), leaves64)
    for a, b in zip(grads, grads_r):
        assert torch.allclose(a.double(), b, rtol=1e-3, atol=1e-4 * b.abs().max().item())


def test_only_float32_cpu_tensors_take_the_fused_path():
    assert not sdf_decoder.available(torch.zeros(2, dtype=torch.float64))
