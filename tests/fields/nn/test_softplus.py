"""The fast softplus against PyTorch's: values, first and second derivatives (the Eikonal loss's path)."""

import torch

from fields.nn.softplus import softplus


def test_values_match_torch_over_the_whole_range():
    x = torch.linspace(-2.0, 2.0, 4001, dtype=torch.float64)
    for beta in (1.0, 100.0):
        assert torch.allclose(softplus(x, beta), torch.nn.functional.softplus(x, beta=beta, threshold=1e9), atol=1e-12)


def test_first_and_second_derivatives_match_torch():
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(300, dtype=torch.float64, generator=gen) * 0.05).requires_grad_(True)
    w = torch.randn(300, dtype=torch.float64, generator=gen)
    grads = []
    for f in (lambda v: softplus(v, 100.0), lambda v: torch.nn.functional.softplus(v, beta=100.0)):
        (g,) = torch.autograd.grad((f(x) * w).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad((g * g).sum(), x)
        grads.append((g.detach(), h))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-10)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-8, atol=1e-8)


def test_gradcheck_twice():
    x = (torch.randn(20, dtype=torch.float64) * 0.03).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: softplus(v, 100.0), (x,))
    assert torch.autograd.gradgradcheck(lambda v: softplus(v, 100.0), (x,))
