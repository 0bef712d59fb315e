"""Packed front-to-back compositing in Triton, forward and backward: the GPU path of NeuS's last step.

Samples are packed ray after ray (nerfacc's layout): ray r owns samples offsets[r] .. offsets[r+1] - 1,
any number of them, no padding. With T_i = prod_{j<i} (1 - alpha_j + 1e-7) (the epsilon of
rendering.alpha_weights, so the two agree to rounding) and w_i = alpha_i T_i, the kernel returns per
ray sum_i w_i v_i for each channel of the per-sample values v (colour, depth, normal, ...) and the
opacity sum_i w_i. The backward, with u_i = g . v_i + g_opacity, is
  d alpha_k = T_k (u_k - B_k),  d v_k = w_k g,  B_k = sum_{i>k} alpha_i u_i prod_{k<j<i} (1 - alpha_j + 1e-7),
B accumulated back to front (B_{k-1} = alpha_k u_k + (1 - alpha_k + 1e-7) B_k): no division by
1 - alpha and no total-minus-prefix cancellation, which lose all precision behind an opaque sample.
A program composites a block of rays, walking their samples together.
Tested on CPU tensors through Triton's interpreter; `available()` is False without triton.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None

BLOCK = 64


def available() -> bool:
    return triton is not None


if triton is not None:

    @triton.jit
    def _forward_kernel(alpha_ptr, v_ptr, off_ptr, out_ptr, op_ptr, R, max_count, C: tl.constexpr,
                        BLOCK: tl.constexpr):
        r = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        m = r < R
        ch = tl.arange(0, C)
        start = tl.load(off_ptr + r, mask=m, other=0)
        count = tl.load(off_ptr + r + 1, mask=m, other=0) - start
        trans = tl.full((BLOCK,), 1.0, tl.float32)
        acc = tl.zeros((BLOCK, C), dtype=tl.float32)
        opacity = tl.zeros((BLOCK,), dtype=tl.float32)
        for k in range(0, max_count):
            live = m & (k < count)
            a = tl.load(alpha_ptr + start + k, mask=live, other=0.0)
            v = tl.load(v_ptr + (start + k)[:, None] * C + ch[None, :], mask=live[:, None], other=0.0)
            w = a * trans
            acc += w[:, None] * v
            opacity += w
            trans = tl.where(live, trans * (1.0 - a + 1e-7), trans)
        tl.store(out_ptr + r[:, None] * C + ch[None, :], acc, mask=m[:, None])
        tl.store(op_ptr + r, opacity, mask=m)

    @triton.jit
    def _backward_kernel(alpha_ptr, v_ptr, off_ptr, g_ptr, gop_ptr, trans_ptr, galpha_ptr, gv_ptr, R, max_count,
                         C: tl.constexpr, BLOCK: tl.constexpr):
        r = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        m = r < R
        ch = tl.arange(0, C)
        start = tl.load(off_ptr + r, mask=m, other=0)
        count = tl.load(off_ptr + r + 1, mask=m, other=0) - start
        g = tl.load(g_ptr + r[:, None] * C + ch[None, :], mask=m[:, None], other=0.0)
        gop = tl.load(gop_ptr + r, mask=m, other=0.0)
        # pass 1, front to back: the transmittance before each sample
        trans = tl.full((BLOCK,), 1.0, tl.float32)
        for k in range(0, max_count):
            live = m & (k < count)
            tl.store(trans_ptr + start + k, trans, mask=live)
            a = tl.load(alpha_ptr + start + k, mask=live, other=0.0)
            trans = tl.where(live, trans * (1.0 - a + 1e-7), trans)
        # pass 2, back to front: behind = sum over later samples of their weight relative to T_{k+1}
        behind = tl.zeros((BLOCK,), dtype=tl.float32)
        for j in range(0, max_count):
            k = max_count - 1 - j
            live = m & (k < count)
            a = tl.load(alpha_ptr + start + k, mask=live, other=0.0)
            t_k = tl.load(trans_ptr + start + k, mask=live, other=0.0)
            v = tl.load(v_ptr + (start + k)[:, None] * C + ch[None, :], mask=live[:, None], other=0.0)
            u = tl.sum(g * v, axis=1) + gop
            tl.store(galpha_ptr + start + k, t_k * (u - behind), mask=live)
            tl.store(gv_ptr + (start + k)[:, None] * C + ch[None, :], (a * t_k)[:, None] * g, mask=live[:, None])
            behind = tl.where(live, a * u + (1.0 - a + 1e-7) * behind, behind)


def _launch_args(offsets: torch.Tensor) -> tuple[int, int]:
    counts = offsets[1:] - offsets[:-1]
    return offsets.numel() - 1, int(counts.max()) if counts.numel() else 0


class CompositePacked(torch.autograd.Function):
    """(alpha (M,), values (M, C), offsets (R + 1,) int64) -> (composited (R, C), opacity (R,))."""

    @staticmethod
    def forward(ctx, alpha, values, offsets):
        n_rays, max_count = _launch_args(offsets)
        C = values.shape[1]
        out = torch.empty(n_rays, C, device=values.device, dtype=torch.float32)
        opacity = torch.empty(n_rays, device=values.device, dtype=torch.float32)
        alpha_c, values_c, offsets_c = alpha.contiguous().float(), values.contiguous().float(), offsets.contiguous()
        if n_rays:
            _forward_kernel[(triton.cdiv(n_rays, BLOCK),)](alpha_c, values_c, offsets_c, out, opacity, n_rays,
                                                           max_count, C=C, BLOCK=BLOCK)
        ctx.save_for_backward(alpha_c, values_c, offsets_c)
        ctx.max_count = max_count
        return out, opacity

    @staticmethod
    def backward(ctx, g_out, g_opacity):
        alpha, values, offsets = ctx.saved_tensors
        n_rays, C = offsets.numel() - 1, values.shape[1]
        g_out = torch.zeros(n_rays, C, device=values.device) if g_out is None else g_out.contiguous().float()
        g_opacity = torch.zeros(n_rays, device=values.device) if g_opacity is None else g_opacity.contiguous().float()
        g_alpha, g_values, trans = torch.zeros_like(alpha), torch.zeros_like(values), torch.empty_like(alpha)
        if n_rays:
            _backward_kernel[(triton.cdiv(n_rays, BLOCK),)](alpha, values, offsets, g_out, g_opacity, trans, g_alpha,
                                                            g_values, n_rays, ctx.max_count, C=C, BLOCK=BLOCK)
        return g_alpha, g_values, None


def composite_packed(alpha: torch.Tensor, values: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per ray: sum_i w_i values_i (channels padded to a power of two inside) and the opacity sum_i w_i."""
    C = values.shape[1]
    width = 1 << max(C - 1, 0).bit_length()
    padded = values if width == C else torch.nn.functional.pad(values, (0, width - C))
    out, opacity = CompositePacked.apply(alpha, padded, offsets)
    return out[:, :C], opacity

