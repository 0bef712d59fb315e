"""The hash grid's CPU kernels (hash_grid_cpu.c, built by fields/cpu_kernels.py) and the autograd
functions that run them, or the Triton kernels (hash_grid_triton.py) on a GPU."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from fields.cpu_kernels import I32, I64, VP, load_library
from fields.cpu_kernels import as_c as _c
from fields.cpu_kernels import ptr as _ptr

SOURCE = Path(__file__).with_name("hash_grid_cpu.c")
_COMMON = [VP, I64, I32, VP, I32, I32, VP, VP, VP, VP, VP, VP, I32, I32]  # points, table, levels, threads
SIGNATURES = {
    "hash_grid_forward": _COMMON + [VP],
    "hash_grid_backward": _COMMON + [VP, VP, VP],
    "hash_grid_backward_backward": _COMMON + [VP, VP, VP, VP, VP],
    "hash_grid_forward_jacobian": _COMMON + [VP, VP],
    "hash_grid_backward_jacobian": _COMMON + [VP, VP, VP],
}


@functools.cache
def load() -> ctypes.CDLL | None:
    """The compiled kernels, building them into the cache the first time; None when unavailable."""
    return load_library(SOURCE, "hash-grid", SIGNATURES)


def will_use(t: torch.Tensor, needs: bool) -> bool:
    """Whether the running backward pass will use a gradient for t (inside a backward only).

    `needs_input_grad` says only that t requires grad. An SDF gradient (autograd.grad to the points)
    never reads the table's gradient, and a training backward with `inputs=` the parameters never
    reads the points'; skipping them takes about a third off a training step's backward. Asks the
    engine through a private hook; if that is gone, every needed gradient is computed."""
    if not needs:
        return False
    try:
        return bool(torch._C._will_engine_execute_node(torch.autograd.graph.get_gradient_edge(t).node))
    except (AttributeError, RuntimeError):
        return True


class LevelTables:
    """The per-level constants as contiguous arrays the kernels read."""

    def __init__(self, levels: list[dict]) -> None:
        self.scales = torch.tensor([L["scale"] for L in levels], dtype=torch.float32)
        self.res = torch.tensor([L["resolution"] for L in levels], dtype=torch.int32)
        self.sizes = torch.tensor([L["size"] for L in levels], dtype=torch.int64).to(torch.int32)  # read as uint32
        self.offsets = torch.tensor([L["offset"] for L in levels], dtype=torch.int64)
        self.hashed = torch.tensor([int(L["hashed"]) for L in levels], dtype=torch.int32)


def _args(x: torch.Tensor, params: torch.Tensor, tables: LevelTables, mask: torch.Tensor, smooth: bool) -> list:
    n, dim = x.shape
    return [_ptr(x), n, dim, _ptr(params), params.shape[1], len(tables.scales), _ptr(tables.scales),
            _ptr(tables.res), _ptr(tables.sizes), _ptr(tables.offsets), _ptr(tables.hashed), _ptr(mask),
            int(smooth), torch.get_num_threads()]


class CKernels:
    """The C kernels behind the interface hash_grid_triton offers (forward, backward, backward_backward),
    and the encoding with its Jacobian (forward_jacobian, backward_jacobian) for analytic SDF gradients."""

    @staticmethod
    def forward(x, params, tables, mask, smooth) -> torch.Tensor:
        x_c, p_c, m_c = _c(x), _c(params), _c(mask)
        out = torch.empty(x.shape[0], len(tables.scales), params.shape[1], dtype=torch.float32)
        load().hash_grid_forward(*_args(x_c, p_c, tables, m_c, smooth), _ptr(out))
        return out.reshape(x.shape[0], len(tables.scales) * params.shape[1])

    @staticmethod
    def backward(grad_out, x, params, tables, mask, smooth, need_x, need_p):
        x_c, p_c, m_c, g = _c(x), _c(params), _c(mask), _c(grad_out)
        grad_p = torch.zeros_like(p_c) if need_p else None
        grad_x = torch.empty_like(x_c) if need_x else None
        load().hash_grid_backward(*_args(x_c, p_c, tables, m_c, smooth), _ptr(g), _ptr(grad_p), _ptr(grad_x))
        return grad_x, grad_p

    @staticmethod
    def backward_backward(grad_out, x, params, tables, mask, smooth, gg, need_g, need_x, need_p):
        x_c, p_c, m_c, g, gg_c = _c(x), _c(params), _c(mask), _c(grad_out), _c(gg)
        out = [torch.empty_like(g) if need_g else None, torch.empty_like(x_c) if need_x else None,
               torch.zeros_like(p_c) if need_p else None]
        load().hash_grid_backward_backward(*_args(x_c, p_c, tables, m_c, smooth), _ptr(g), _ptr(gg_c), _ptr(out[0]),
                                           _ptr(out[2]), _ptr(out[1]))
        return tuple(out)

    @staticmethod
    def forward_jacobian(x, params, tables, mask, smooth) -> tuple[torch.Tensor, torch.Tensor]:
        x_c, p_c, m_c = _c(x), _c(params), _c(mask)
        n, dim, n_out = x.shape[0], x.shape[1], len(tables.scales) * params.shape[1]
        out, jac = torch.empty(n, n_out), torch.empty(n, dim, n_out)
        load().hash_grid_forward_jacobian(*_args(x_c, p_c, tables, m_c, smooth), _ptr(out), _ptr(jac))
        return out, jac

    @staticmethod
    def backward_jacobian(grad_out, grad_jac, x, params, tables, mask, smooth) -> torch.Tensor:
        x_c, p_c, m_c, g, gj = _c(x), _c(params), _c(mask), _c(grad_out), _c(grad_jac)
        grad_p = torch.zeros_like(p_c)
        load().hash_grid_backward_jacobian(*_args(x_c, p_c, tables, m_c, smooth), _ptr(g), _ptr(gj), _ptr(grad_p))
        return grad_p


class HashGridJacobianFunction(torch.autograd.Function):
    """(x, params) -> (encoding (N, E), d encoding / dx as (N, d, E)), differentiable once in the
    parameters (not in x).

    What an SDF's analytic gradient needs: a loss on the gradient then costs one scatter into the
    table (the backward) instead of autograd's backward plus double backward."""

    @staticmethod
    def forward(ctx, x, params, tables, mask, smooth, kernels=CKernels):
        out, jac = kernels.forward_jacobian(x.detach(), params.detach(), tables, mask, smooth)
        ctx.save_for_backward(x, params)
        ctx.tables, ctx.mask, ctx.smooth, ctx.kernels = tables, mask, smooth, kernels
        return out, jac

    @staticmethod
    def backward(ctx, grad_out, grad_jac):
        x, params = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise RuntimeError("the hash grid's Jacobian kernels give no gradient for the points")
        grad_out = torch.zeros(x.shape[0], ctx.tables.scales.numel() * params.shape[1]) if grad_out is None else grad_out
        grad_jac = torch.zeros(x.shape[0], x.shape[1], grad_out.shape[1]) if grad_jac is None else grad_jac
        grad_p = ctx.kernels.backward_jacobian(grad_out, grad_jac, x, params, ctx.tables, ctx.mask, ctx.smooth)
        return None, grad_p, None, None, None, None


class HashGridFunction(torch.autograd.Function):
    """Forward in compiled kernels (C on the CPU, Triton on a GPU: `kernels`); the backward is
    HashGridBackward, itself differentiable (for an Eikonal loss)."""

    @staticmethod
    def forward(ctx, x, params, tables, mask, smooth, reference, kernels=CKernels):
        out = kernels.forward(x.detach(), params.detach(), tables, mask, smooth)
        ctx.save_for_backward(x, params)
        ctx.tables, ctx.mask, ctx.smooth, ctx.reference, ctx.kernels = tables, mask, smooth, reference, kernels
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, params = ctx.saved_tensors
        grad_x, grad_p = HashGridBackward.apply(grad_out, x, params, ctx.tables, ctx.mask, ctx.smooth, ctx.reference,
                                                will_use(x, ctx.needs_input_grad[0]),
                                                will_use(params, ctx.needs_input_grad[1]), ctx.kernels)
        return grad_x, grad_p, None, None, None, None, None


class HashGridBackward(torch.autograd.Function):
    """(grad_out, x, params) -> (d/dx, d/dparams) in compiled kernels, and its own backward in them for
    losses on d/dx.

    A loss on the parameter gradient itself (never needed in training) goes through the PyTorch
    reference path instead."""

    @staticmethod
    def forward(ctx, grad_out, x, params, tables, mask, smooth, reference, need_x, need_p, kernels=CKernels):
        grad_x, grad_p = kernels.backward(grad_out.detach(), x.detach(), params.detach(), tables, mask, smooth,
                                          need_x, need_p)
        ctx.save_for_backward(grad_out, x, params)
        ctx.tables, ctx.mask, ctx.smooth, ctx.reference, ctx.kernels = tables, mask, smooth, reference, kernels
        return grad_x, grad_p

    @staticmethod
    def backward(ctx, gg_x, gg_p):
        grad_out, x, params = ctx.saved_tensors
        need_g, need_x, need_p = (will_use(t, n) for t, n in zip((grad_out, x, params), ctx.needs_input_grad[:3]))
        if gg_p is not None and bool(gg_p.any()) or torch.is_grad_enabled():
            return _reference_double_backward(ctx, gg_x, gg_p) + (None,) * 7
        out = (None, None, None)
        if gg_x is not None and (need_g or need_x or need_p):
            out = ctx.kernels.backward_backward(grad_out.detach(), x.detach(), params.detach(), ctx.tables, ctx.mask,
                                                ctx.smooth, gg_x, need_g, need_x, need_p)
        return out[0], out[1], out[2], None, None, None, None, None, None, None


def _reference_double_backward(ctx, gg_x, gg_p) -> tuple:
    """The backward's backward through the differentiable PyTorch path (any order)."""
    grad_out, x, params = ctx.saved_tensors
    higher = torch.is_grad_enabled()
    with torch.enable_grad():
        xs, ps, gs = x.detach().requires_grad_(True), params.detach().requires_grad_(True), grad_out.detach().requires_grad_(True)
        gx, gp = torch.autograd.grad(ctx.reference(xs, ps), (xs, ps), gs, create_graph=True)
        outs = [(gx, gg_x), (gp, gg_p)]
        total = sum((o * g).sum() for o, g in outs if g is not None)
        grads = torch.autograd.grad(total, (gs, xs, ps), allow_unused=True, create_graph=higher)
    return tuple(gr if need else None for gr, need in zip(grads, ctx.needs_input_grad[:3]))
