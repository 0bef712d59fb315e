"""Multiresolution hash encoding (Mueller et al. 2022) with tiny-cuda-nn's exact layout, in pure PyTorch.

Per level l: scale = base * b^l - 1, resolution = ceil(scale) + 1, position = x * scale + 0.5.
A level whose resolution^d fits its table is indexed densely (x0 + x1*res + x2*res^2), otherwise by the
xor of coordinates times (1, 2654435761, 805459861) in uint32; both modulo the level's table size.
Parameters: level by level, entries with interleaved features, initialised U(-1e-4, 1e-4).
Everything is differentiable twice (an Eikonal loss needs d/dx of the features).

Backends: on CUDA with `tinycudann` importable, tcnn's own HashGrid runs on this module's parameter
tensor (the layouts are identical, so a checkpoint loads in either backend); without it the Triton
kernels on CUDA (hash_grid_triton.py), the C kernels on the CPU, and the PyTorch reference path on
anything else.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fields.encodings import hash_grid_kernels
from fields.encodings.interpolation import corner_weights
from fields.nn.adam import Adam

PRIMES = (1, 2654435761, 805459861)


def level_layout(n_levels: int, base_resolution: int, per_level_scale: float, log2_hashmap_size: int, dim: int) -> list[dict]:
    """Per level: scale, resolution, table size, offset (in entries) and whether it is hashed."""
    out, offset, max_entries = [], 0, 2**log2_hashmap_size
    for lvl in range(n_levels):
        scale = base_resolution * per_level_scale**lvl - 1.0
        res = int(math.ceil(scale)) + 1
        dense = res**dim
        size = min(max_entries, (dense + 7) // 8 * 8)
        out.append({"scale": scale, "resolution": res, "size": size, "offset": offset, "hashed": dense > size})
        offset += size
    return out


def grid_index(corner: torch.Tensor, resolution: int, size: int, hashed: bool) -> torch.Tensor:
    """Table index of integer corners (..., d) for one level, in int64 holding uint32 arithmetic."""
    if hashed:
        h = torch.zeros(corner.shape[:-1], dtype=torch.int64, device=corner.device)
        for k in range(corner.shape[-1]):
            h = h ^ ((corner[..., k] * PRIMES[k]) & 0xFFFFFFFF)
        return h % size
    idx = torch.zeros(corner.shape[:-1], dtype=torch.int64, device=corner.device)
    stride = 1
    for k in range(corner.shape[-1]):
        idx = idx + corner[..., k] * stride
        stride *= resolution
    return (idx & 0xFFFFFFFF) % size


class HashGrid(nn.Module):
    """Inputs in [0, 1]^d, output (N, n_levels * n_features) ordered level-major."""

    def __init__(self, dim: int = 3, n_levels: int = 16, n_features: int = 2, log2_hashmap_size: int = 19,
                 base_resolution: int = 16, per_level_scale: float | None = None, finest_resolution: int | None = None,
                 interpolation: str = "linear") -> None:
        super().__init__()
        if per_level_scale is None:
            finest = finest_resolution or 2048
            per_level_scale = math.exp(math.log(finest / base_resolution) / max(n_levels - 1, 1))
        self.dim, self.n_levels, self.n_features = dim, n_levels, n_features
        self.per_level_scale, self.interpolation = per_level_scale, interpolation
        self.levels = level_layout(n_levels, base_resolution, per_level_scale, log2_hashmap_size, dim)
        total = self.levels[-1]["offset"] + self.levels[-1]["size"]
        self.params = nn.Parameter(torch.empty(total, n_features).uniform_(-1e-4, 1e-4))
        corners = torch.tensor([[(c >> k) & 1 for k in range(dim)] for c in range(2**dim)], dtype=torch.int64)
        self.register_buffer("corners", corners, persistent=False)
        self.register_buffer("level_mask", torch.ones(n_levels), persistent=False)
        self.use_kernels = True  # the C kernels on CPU when they build; the reference path otherwise
        self.use_tcnn = True  # tiny-cuda-nn on CUDA when importable
        self.use_triton = False  # the Triton kernels on any device (they run on CUDA by default)
        self._tables: hash_grid_kernels.LevelTables | None = None
        self._tcnn: nn.Module | None | bool = False  # False: not tried yet
        self._base_resolution, self._log2_size = base_resolution, log2_hashmap_size

    @property
    def out_dim(self) -> int:
        return self.n_levels * self.n_features

    def _weights(self, frac: torch.Tensor) -> torch.Tensor:
        """Per-corner interpolation weights (N, 2^d) from fractional positions (N, d)."""
        if self.interpolation == "smoothstep":
            frac = frac * frac * (3.0 - 2.0 * frac)
        return corner_weights(frac, self.corners)

    def tcnn_config(self) -> dict:
        """This encoding as a tiny-cuda-nn encoding config."""
        return {"otype": "HashGrid", "n_levels": self.n_levels, "n_features_per_level": self.n_features,
                "log2_hashmap_size": self._log2_size, "base_resolution": self._base_resolution,
                "per_level_scale": self.per_level_scale,
                "interpolation": "Smoothstep" if self.interpolation == "smoothstep" else "Linear"}

    def _tcnn_module(self) -> nn.Module | None:
        """tcnn.Encoding with this layout, or None (not importable, or its parameter count differs)."""
        if self._tcnn is False:
            enc = None
            try:
                import tinycudann as tcnn

                enc = tcnn.Encoding(self.dim, self.tcnn_config(), dtype=torch.float32)
                enc = enc.to(self.params.device) if enc.params.numel() == self.params.numel() else None
            except Exception:  # not installed, no CUDA build, or an API change: the PyTorch path runs
                enc = None
            # kept out of the module tree: the state dict holds only `params`, the same in every backend
            object.__setattr__(self, "_tcnn", enc)
        return self._tcnn

    def _forward_tcnn(self, x: torch.Tensor, enc: nn.Module) -> torch.Tensor:
        # tcnn reads its `params` at call time; point it at ours (a view keeps the autograd link)
        enc._parameters["params"] = self.params.reshape(-1)
        out = enc(x.float().contiguous()).float().reshape(x.shape[0], self.n_levels, self.n_features)
        return (out * self.level_mask[None, :, None]).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_tcnn and x.is_cuda and (enc := self._tcnn_module()) is not None:
            return self._forward_tcnn(x, enc)
        kernels = self.kernels_for(x)
        if kernels is not None:
            return hash_grid_kernels.HashGridFunction.apply(x, self.params, self.level_tables(), self.level_mask,
                                                            self.interpolation == "smoothstep", self.reference, kernels)
        return self.reference(x, self.params)

    def forward_with_jacobian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(encoding (N, E), d encoding / dx as (N, d, E)) in one pass of the C kernels, differentiable in
        the parameters only; None where those kernels do not run (the caller differentiates forward())."""
        if x.requires_grad or self.kernels_for(x) is not hash_grid_kernels.CKernels:
            return None
        return hash_grid_kernels.HashGridJacobianFunction.apply(x, self.params, self.level_tables(), self.level_mask,
                                                                self.interpolation == "smoothstep")

    def level_tables(self) -> hash_grid_kernels.LevelTables:
        """The per-level constants as the kernels read them (made on first use)."""
        if self._tables is None:
            self._tables = hash_grid_kernels.LevelTables(self.levels)
        return self._tables

    def kernels_for(self, x: torch.Tensor):
        """The compiled kernels for x's device, or None (the PyTorch reference path): the C kernels on the
        CPU, Triton's on CUDA (3-D, 2^k features; `use_triton` forces them anywhere, as the tests do on
        the CPU through Triton's interpreter)."""
        if not self.use_kernels or self.params.dtype != torch.float32:
            return None
        if x.is_cuda or self.use_triton:  # imported only here: the CPU path never needs triton
            from fields.encodings import hash_grid_triton

            if self.dim == 3 and self.n_features & (self.n_features - 1) == 0 and hash_grid_triton.available():
                return hash_grid_triton
        if x.device.type == "cpu" and self.n_features <= 8 and hash_grid_kernels.load() is not None:
            return hash_grid_kernels.CKernels
        return None

    def reference(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """The pure-PyTorch encoding (any device, differentiable any number of times)."""
        feats = []
        for lvl, L in enumerate(self.levels):
            pos = x * L["scale"] + 0.5
            base = torch.floor(pos)
            frac = pos - base
            corner = base.to(torch.int64)[:, None, :] + self.corners[None]  # (N, 2^d, d)
            idx = grid_index(corner, L["resolution"], L["size"], L["hashed"]) + L["offset"]
            vals = params[idx]  # (N, 2^d, F)
            f = (self._weights(frac)[..., None] * vals).sum(1)
            feats.append(f * self.level_mask[lvl])
        return torch.cat(feats, dim=-1)

    def set_active_levels(self, n: int) -> None:
        """Coarse-to-fine: zero the output of levels >= n."""
        self.level_mask.zero_()
        self.level_mask[: max(1, n)] = 1.0


def backward_to_parameters(loss: torch.Tensor, opt: "torch.optim.Optimizer | Adam") -> None:
    """loss.backward() into the optimiser's parameters alone.

    A plain backward also fills .grad of every other leaf that requires grad, such as the points an
    SDF gradient was taken at; the hash-grid kernels then compute those unused gradients too (the
    costly Hessian term of the double backward among them)."""
    loss.backward(inputs=[p for g in opt.param_groups for p in g["params"] if p.requires_grad])
