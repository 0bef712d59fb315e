"""The hash grid's GPU kernels in Triton: forward, backward and the backward's backward (Eikonal).

Same layout and arithmetic as hash_grid_cpu.c and tiny-cuda-nn (3-D inputs in [0, 1], per level
pos = x * scale + 0.5, dense or hashed corner indices modulo the level's table size); one program per
block of points and level. Parameter gradients are scattered with atomic adds; d/dx is written per
level and summed afterwards, so it has no atomics. Used on CUDA tensors when tiny-cuda-nn is absent;
the tests run these kernels on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1).
`available()` is False when triton cannot be imported; nothing here is needed on the CPU path.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU install: the C kernels and the PyTorch path run instead
    triton = None

BLOCK = 128
MASK32 = 0xFFFFFFFF


def available() -> bool:
    return triton is not None


if triton is not None:

    @triton.jit
    def _locate(x_ptr, i, m, scale, SMOOTH: tl.constexpr):
        """Base corner, interpolation weights and their derivative d w / d pos for one level."""
        px = tl.load(x_ptr + i * 3 + 0, mask=m, other=0.0) * scale + 0.5
        py = tl.load(x_ptr + i * 3 + 1, mask=m, other=0.0) * scale + 0.5
        pz = tl.load(x_ptr + i * 3 + 2, mask=m, other=0.0) * scale + 0.5
        fx, fy, fz = tl.floor(px), tl.floor(py), tl.floor(pz)
        ux, uy, uz = px - fx, py - fy, pz - fz
        if SMOOTH:
            wx, wy, wz = ux * ux * (3.0 - 2.0 * ux), uy * uy * (3.0 - 2.0 * uy), uz * uz * (3.0 - 2.0 * uz)
            dx, dy, dz = 6.0 * ux * (1.0 - ux), 6.0 * uy * (1.0 - uy), 6.0 * uz * (1.0 - uz)
            ex, ey, ez = 6.0 * (1.0 - 2.0 * ux), 6.0 * (1.0 - 2.0 * uy), 6.0 * (1.0 - 2.0 * uz)
        else:
            wx, wy, wz = ux, uy, uz
            dx, dy, dz = ux * 0.0 + 1.0, uy * 0.0 + 1.0, uz * 0.0 + 1.0
            ex, ey, ez = ux * 0.0, uy * 0.0, uz * 0.0
        return (fx.to(tl.int64), fy.to(tl.int64), fz.to(tl.int64), wx, wy, wz, dx, dy, dz, ex, ey, ez)

    @triton.jit
    def _corner_row(bx, by, bz, c: tl.constexpr, res, size, offset, hashed):
        """Row (entry) of corner c of the cell at (bx, by, bz): dense or hashed index, modulo the size."""
        cx = bx + (c & 1)
        cy = by + ((c >> 1) & 1)
        cz = bz + ((c >> 2) & 1)
        h = ((cx * 1) ^ (cy * 2654435761) ^ (cz * 805459861)) & 0xFFFFFFFF
        dn = (cx + cy * res + cz * res * res) & 0xFFFFFFFF
        idx = tl.where(hashed != 0, h, dn)
        return offset + idx % size

    @triton.jit
    def _axis(w, bit: tl.constexpr):
        return w if bit else 1.0 - w

    @triton.jit
    def _sign(bit: tl.constexpr):
        return 1.0 if bit else -1.0

    @triton.jit
    def _program(scales, ress, sizes, offsets, hasheds, lmask, N, F: tl.constexpr, BLOCK: tl.constexpr):
        """This program's level and points (indices, in-range mask, feature lanes) and the level's constants."""
        lvl = tl.program_id(1)
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        scale = tl.load(scales + lvl)
        res, size = tl.load(ress + lvl).to(tl.int64), tl.load(sizes + lvl)
        offset, hashed, lm = tl.load(offsets + lvl), tl.load(hasheds + lvl), tl.load(lmask + lvl)
        return lvl, i, i < N, tl.arange(0, F), scale, res, size, offset, hashed, lm

    @triton.jit
    def _store_level_xyz(ptr, lvl, N, i, m, v0, v1, v2):
        """One level's d/dx of points i into the (L, N, 3) buffer summed over levels afterwards."""
        base = ptr + lvl * N * 3 + i * 3
        tl.store(base + 0, v0, mask=m)
        tl.store(base + 1, v1, mask=m)
        tl.store(base + 2, v2, mask=m)

    @triton.jit
    def _forward_kernel(x_ptr, p_ptr, out_ptr, scales, ress, sizes, offsets, hasheds, lmask, N,
                        L: tl.constexpr, F: tl.constexpr, SMOOTH: tl.constexpr, BLOCK: tl.constexpr):
        lvl, i, m, fo, scale, res, size, offset, hashed, lm = _program(scales, ress, sizes, offsets, hasheds, lmask,
                                                                       N, F, BLOCK)
        bx, by, bz, wx, wy, wz, _dx, _dy, _dz, _ex, _ey, _ez = _locate(x_ptr, i, m, scale, SMOOTH)
        acc = tl.zeros((BLOCK, F), dtype=tl.float32)
        for c in tl.static_range(8):
            row = _corner_row(bx, by, bz, c, res, size, offset, hashed)
            w = _axis(wx, c & 1) * _axis(wy, (c >> 1) & 1) * _axis(wz, (c >> 2) & 1)
            v = tl.load(p_ptr + row[:, None] * F + fo[None, :], mask=m[:, None], other=0.0)
            acc += w[:, None] * v
        tl.store(out_ptr + i[:, None] * (L * F) + lvl * F + fo[None, :], acc * lm, mask=m[:, None])

    @triton.jit
    def _backward_kernel(x_ptr, p_ptr, g_ptr, gp_ptr, gx_ptr, scales, ress, sizes, offsets, hasheds, lmask, N,
                         L: tl.constexpr, F: tl.constexpr, SMOOTH: tl.constexpr, NEED_P: tl.constexpr,
                         NEED_X: tl.constexpr, BLOCK: tl.constexpr):
        lvl, i, m, fo, scale, res, size, offset, hashed, lm = _program(scales, ress, sizes, offsets, hasheds, lmask,
                                                                       N, F, BLOCK)
        bx, by, bz, wx, wy, wz, dx, dy, dz, _ex, _ey, _ez = _locate(x_ptr, i, m, scale, SMOOTH)
        g = tl.load(g_ptr + i[:, None] * (L * F) + lvl * F + fo[None, :], mask=m[:, None], other=0.0) * lm
        gx0 = tl.zeros((BLOCK,), dtype=tl.float32)
        gx1 = tl.zeros((BLOCK,), dtype=tl.float32)
        gx2 = tl.zeros((BLOCK,), dtype=tl.float32)
        for c in tl.static_range(8):
            row = _corner_row(bx, by, bz, c, res, size, offset, hashed)
            ax, ay, az = _axis(wx, c & 1), _axis(wy, (c >> 1) & 1), _axis(wz, (c >> 2) & 1)
            if NEED_P:
                tl.atomic_add(gp_ptr + row[:, None] * F + fo[None, :], (ax * ay * az)[:, None] * g, mask=m[:, None])
            if NEED_X:
                v = tl.load(p_ptr + row[:, None] * F + fo[None, :], mask=m[:, None], other=0.0)
                dot = tl.sum(g * v, axis=1)
                gx0 += _sign(c & 1) * dx * scale * ay * az * dot
                gx1 += _sign((c >> 1) & 1) * dy * scale * ax * az * dot
                gx2 += _sign((c >> 2) & 1) * dz * scale * ax * ay * dot
        if NEED_X:
            _store_level_xyz(gx_ptr, lvl, N, i, m, gx0, gx1, gx2)

    @triton.jit
    def _backward_backward_kernel(x_ptr, p_ptr, g_ptr, gg_ptr, ggo_ptr, gp_ptr, gx_ptr, scales, ress, sizes, offsets,
                                  hasheds, lmask, N, L: tl.constexpr, F: tl.constexpr, SMOOTH: tl.constexpr,
                                  NEED_G: tl.constexpr, NEED_P: tl.constexpr, NEED_X: tl.constexpr,
                                  BLOCK: tl.constexpr):
        """With gg = d loss / d (grad_x): d/d grad_out, d/d params and d/d x of the backward's grad_x."""
        lvl, i, m, fo, scale, res, size, offset, hashed, lm = _program(scales, ress, sizes, offsets, hasheds, lmask,
                                                                       N, F, BLOCK)
        bx, by, bz, wx, wy, wz, dx, dy, dz, ex, ey, ez = _locate(x_ptr, i, m, scale, SMOOTH)
        g = tl.load(g_ptr + i[:, None] * (L * F) + lvl * F + fo[None, :], mask=m[:, None], other=0.0) * lm
        q0 = tl.load(gg_ptr + i * 3 + 0, mask=m, other=0.0)
        q1 = tl.load(gg_ptr + i * 3 + 1, mask=m, other=0.0)
        q2 = tl.load(gg_ptr + i * 3 + 2, mask=m, other=0.0)
        s2 = scale * scale
        acc = tl.zeros((BLOCK, F), dtype=tl.float32)
        h0 = tl.zeros((BLOCK,), dtype=tl.float32)
        h1 = tl.zeros((BLOCK,), dtype=tl.float32)
        h2 = tl.zeros((BLOCK,), dtype=tl.float32)
        for c in tl.static_range(8):
            row = _corner_row(bx, by, bz, c, res, size, offset, hashed)
            ax, ay, az = _axis(wx, c & 1), _axis(wy, (c >> 1) & 1), _axis(wz, (c >> 2) & 1)
            sx, sy, sz = _sign(c & 1), _sign((c >> 1) & 1), _sign((c >> 2) & 1)
            d0, d1, d2 = sx * dx * scale, sy * dy * scale, sz * dz * scale  # d (axis weight) / d x_k
            ggdw = q0 * d0 * ay * az + q1 * d1 * ax * az + q2 * d2 * ax * ay
            v = tl.load(p_ptr + row[:, None] * F + fo[None, :], mask=m[:, None], other=0.0)
            acc += ggdw[:, None] * v
            if NEED_P:
                tl.atomic_add(gp_ptr + row[:, None] * F + fo[None, :], ggdw[:, None] * g, mask=m[:, None])
            if NEED_X:
                dot = tl.sum(g * v, axis=1)
                # d/dx_m of sum_k q_k dw_c[k]: diagonal terms from the second derivative of the weights
                h0 += dot * (q0 * sx * ex * s2 * ay * az + q1 * d1 * d0 * az + q2 * d2 * d0 * ay)
                h1 += dot * (q0 * d0 * d1 * az + q1 * sy * ey * s2 * ax * az + q2 * d2 * d1 * ax)
                h2 += dot * (q0 * d0 * d2 * ay + q1 * d1 * d2 * ax + q2 * sz * ez * s2 * ax * ay)
        if NEED_G:
            tl.store(ggo_ptr + i[:, None] * (L * F) + lvl * F + fo[None, :], acc * lm, mask=m[:, None])
        if NEED_X:
            _store_level_xyz(gx_ptr, lvl, N, i, m, h0, h1, h2)


def _tables(tables, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The level constants on the kernels' device (sizes and offsets as int64)."""
    key = str(device)
    cache = tables.__dict__.setdefault("_triton", {})
    if key not in cache:
        cache[key] = (tables.scales.to(device), tables.res.to(device),
                      tables.sizes.to(torch.int64).bitwise_and(MASK32).to(device), tables.offsets.to(device),
                      tables.hashed.to(device))
    return cache[key]


def _grid(n: int, levels: int) -> tuple[int, int]:
    return (triton.cdiv(n, BLOCK), levels)


def forward(x: torch.Tensor, params: torch.Tensor, tables, mask: torch.Tensor, smooth: bool) -> torch.Tensor:
    """(N, L * F) features of points x (N, 3) in [0, 1]."""
    n, L, F = x.shape[0], len(tables.scales), params.shape[1]
    out = torch.empty(n, L * F, device=x.device, dtype=torch.float32)
    if n:
        _forward_kernel[_grid(n, L)](x.contiguous(), params.contiguous(), out, *_tables(tables, x.device),
                                     mask.contiguous(), n, L=L, F=F, SMOOTH=smooth, BLOCK=BLOCK)
    return out


def backward(grad_out: torch.Tensor, x: torch.Tensor, params: torch.Tensor, tables, mask: torch.Tensor, smooth: bool,
             need_x: bool, need_p: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(d/dx, d/dparams) of sum(grad_out * features); either may be skipped (None)."""
    n, L, F = x.shape[0], len(tables.scales), params.shape[1]
    gp = torch.zeros_like(params) if need_p else None
    gx = torch.zeros(L, n, 3, device=x.device, dtype=torch.float32) if need_x else None
    if n and (need_x or need_p):
        _backward_kernel[_grid(n, L)](x.contiguous(), params.contiguous(), grad_out.contiguous(),
                                      gp if need_p else params, gx if need_x else x, *_tables(tables, x.device),
                                      mask.contiguous(), n, L=L, F=F, SMOOTH=smooth, NEED_P=need_p, NEED_X=need_x,
                                      BLOCK=BLOCK)
    return (gx.sum(0) if need_x else None), gp


def backward_backward(grad_out: torch.Tensor, x: torch.Tensor, params: torch.Tensor, tables, mask: torch.Tensor,
                      smooth: bool, gg: torch.Tensor, need_g: bool, need_x: bool, need_p: bool):
    """The backward's grad_x differentiated against gg: (d/d grad_out, d/dx, d/dparams), each optional."""
    n, L, F = x.shape[0], len(tables.scales), params.shape[1]
    ggo = torch.zeros_like(grad_out) if need_g else None
    gp = torch.zeros_like(params) if need_p else None
    gx = torch.zeros(L, n, 3, device=x.device, dtype=torch.float32) if need_x else None
    if n and (need_g or need_x or need_p):
        _backward_backward_kernel[_grid(n, L)](
            x.contiguous(), params.contiguous(), grad_out.contiguous(), gg.contiguous(),
            ggo if need_g else grad_out, gp if need_p else params, gx if need_x else x, *_tables(tables, x.device),
            mask.contiguous(), n, L=L, F=F, SMOOTH=smooth, NEED_G=need_g, NEED_P=need_p, NEED_X=need_x, BLOCK=BLOCK)
    return ggo, (gx.sum(0) if need_x else None), gp
