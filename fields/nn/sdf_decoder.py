"""An SDF decoder of one softplus hidden layer with its gradient written out, as one autograd function:
the matrix products in PyTorch (BLAS), every elementwise step fused into a few C passes
(sdf_decoder_cpu.c).

(h, J, W1, b1, W2, b2) -> (out = W2 softplus_b(W1 h + b1) + b2, g = d out[0] / dx), where h is
(x, encoding(x)) and J = d encoding / dx. The gradient is g = u[:dim] + jscale J u[dim:], with
u = (W2[0] * s) W1 and s = sigmoid(b z) the softplus's slope. Written through autograd this takes
some twenty elementwise operations over the (n, hidden) activations forward and backward; fused, four
passes. Only the CPU; SDFField falls back to its autograd form elsewhere.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from fields.cpu_kernels import F32, I32, I64, VP, as_c, load_library, ptr

SOURCE = Path(__file__).with_name("sdf_decoder_cpu.c")
SIGNATURES = {
    "softplus_slope_forward": [VP, I64, I32, F32, VP, VP, VP, I32],
    "softplus_slope_backward": [VP, VP, VP, I64, I32, F32, VP, VP, I32],
    "jacobian_gradient": [VP, VP, I64, I32, I32, I32, I32, F32, VP, I32],
    "jacobian_gradient_backward": [VP, VP, VP, I64, I32, I32, I32, I32, F32, VP, VP, I32],
    "softplus_dot": [VP, I64, I32, F32, VP, F32, VP, I32],
}


@functools.cache
def load() -> ctypes.CDLL | None:
    """The compiled passes, building them the first time; None when unavailable. Fast math: exp and log
    then vectorise (glibc's vector maths); their arguments are clamped."""
    return load_library(SOURCE, "SDF decoder", SIGNATURES, ("-ffast-math",))


def available(*tensors: torch.Tensor) -> bool:
    """Whether the fused path runs for these tensors: on the CPU, in float32, with the kernels built."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and load() is not None


def distance(h: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor,
             beta: float) -> torch.Tensor:
    """The decoder's first output alone, W2[0] softplus_b(W1 h + b1) + b2[0], without gradients: one
    matrix product and one C pass that never writes the activations out."""
    with torch.no_grad():
        z = torch.addmm(b1, as_c(h), W1.t())
        w2row, out = as_c(W2[0]), torch.empty(h.shape[0])
        load().softplus_dot(ptr(z), h.shape[0], W1.shape[0], float(beta), ptr(w2row), float(b2[0]), ptr(out),
                            torch.get_num_threads())
    return out


class SoftplusSDFDecoder(torch.autograd.Function):
    """See the module docstring. Differentiable once, in h, J and the weights (what a loss on the SDF,
    the feature and the gradient needs)."""

    @staticmethod
    def forward(ctx, h, jac, W1, b1, W2, b2, beta: float, dim: int, jscale: float):
        lib, threads = load(), torch.get_num_threads()
        n, hidden = h.shape[0], W1.shape[0]
        h_c, jac_c, w2row = as_c(h), as_c(jac), as_c(W2[0])
        a = torch.addmm(b1.detach(), h_c, W1.detach().t())  # z, then softplus(z) in place
        s, v = torch.empty_like(a), torch.empty_like(a)
        lib.softplus_slope_forward(ptr(a), n, hidden, float(beta), ptr(w2row), ptr(s), ptr(v), threads)
        out = torch.addmm(b2.detach(), a, W2.detach().t())
        gh = v @ W1.detach()
        g = torch.empty(n, dim)
        lib.jacobian_gradient(ptr(gh), ptr(jac_c), n, h.shape[1], dim, dim, jac.shape[2], float(jscale), ptr(g), threads)
        ctx.save_for_backward(h_c, jac_c, W1, W2, a, s, v, gh)
        ctx.beta, ctx.dim, ctx.jscale = beta, dim, jscale
        return out, g

    @staticmethod
    def backward(ctx, dout, dg):
        h, jac, W1, W2, a, s, v, gh = ctx.saved_tensors
        lib, threads = load(), torch.get_num_threads()
        n, hidden, e = h.shape[0], W1.shape[0], jac.shape[2]
        W1d, W2d = W1.detach(), W2.detach()
        dout = torch.zeros(n, W2.shape[0]) if dout is None else as_c(dout)
        dg = torch.zeros(n, ctx.dim) if dg is None else as_c(dg)
        # through the gradient: g = gh[:dim] + jscale J gh[dim:], gh = v W1, v = s * W2[0]
        dgh, djac = torch.empty_like(gh), torch.empty_like(jac)
        lib.jacobian_gradient_backward(ptr(dg), ptr(gh), ptr(jac), n, h.shape[1], ctx.dim, ctx.dim, e,
                                       float(ctx.jscale), ptr(dgh), ptr(djac), threads)
        dv = dgh @ W1d.t()
        dW1 = v.t() @ dgh
        # through the output and the slope: one pass gives dz (in place of da) and d W2[0] from v
        dz = dout @ W2d
        w2row, dw2row = as_c(W2d[0]), torch.zeros(hidden)
        lib.softplus_slope_backward(ptr(dz), ptr(dv), ptr(s), n, hidden, float(ctx.beta), ptr(w2row), ptr(dw2row),
                                    threads)
        dW2 = dout.t() @ a
        dW2[0] += dw2row
        db2 = dout.sum(0)
        dW1 += dz.t() @ h
        db1 = dz.sum(0)
        dh = dz @ W1d if ctx.needs_input_grad[0] else None
        return dh, djac, dW1, db1, dW2, db2, None, None, None
