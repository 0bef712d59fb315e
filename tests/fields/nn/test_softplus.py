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


def test_softplus_and_slope_match_torch_with_their_gradients():
    from fields.nn.softplus import softplus_and_slope

    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(500, dtype=torch.float64, generator=gen) * 0.05).requires_grad_(True)
    wy, ws = torch.randn(2, 500, dtype=torch.float64, generator=gen)
    y, s = softplus_and_slope(x, 100.0)
    y_ref, s_ref = torch.nn.functional.softplus(x, beta=100.0), torch.sigmoid(100.0 * x)
    assert torch.allclose(y, y_ref, atol=1e-12) and torch.allclose(s, s_ref, atol=1e-12)
    (g,) = torch.autograd.grad((y * wy + s * ws).sum(), x)
    (g_ref,) = torch.autograd.grad((y_ref * wy + s_ref * ws).sum(), x)
    assert torch.allclose(g, g_ref, rtol=1e-8, atol=1e-8)
    assert torch.autograd.gradcheck(lambda v: softplus_and_slope(v, 100.0), (x[:20].detach().requires_grad_(True),))
