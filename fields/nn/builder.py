"""One way to say what a field is: an encoding, a decoder and optional CAM, from a plain dict.

The same dict appears in configs/ presets (YAML), on the command line (`--field NAME` picks a named
spec from FIELD_SPECS; `--set field.decoder.hidden=128` edits it) and in Python:

    build_field({"encoding": {"type": "hash", "n_levels": 16}, "decoder": {"type": "mlp", "hidden": 64}},
                in_dim=2, out_dim=3)

Inputs are coordinates in [0, 1]^d.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fields.encodings.dense_grid import DenseGrid
from fields.encodings.fourier import FourierFeatures, PositionalEncoding
from fields.encodings.hash_grid import HashGrid
from fields.encodings.triplane import TriPlane
from fields.errors import FieldsError
from fields.nn.cam import CAMMLP
from fields.nn.mlp import MLP
from fields.nn.rbf import GaussianRBF

FIELD_SPECS: dict[str, dict] = {
    "pe": {"encoding": {"type": "pe", "n_frequencies": 10}, "decoder": {"type": "mlp", "hidden": 256, "depth": 3}},
    "fourier": {"encoding": {"type": "fourier", "n_frequencies": 256, "sigma": 10.0},
                "decoder": {"type": "mlp", "hidden": 256, "depth": 3}},
    "hash": {"encoding": {"type": "hash", "n_levels": 16, "n_features": 2, "log2_hashmap_size": 19,
                          "base_resolution": 16, "finest_resolution": 512},
             "decoder": {"type": "mlp", "hidden": 64, "depth": 2}},
    "dense": {"encoding": {"type": "dense", "n_levels": 4, "n_features": 8, "base_resolution": 16,
                           "finest_resolution": 128}, "decoder": {"type": "mlp", "hidden": 64, "depth": 2}},
    "triplane": {"encoding": {"type": "triplane", "channels": 16, "resolution": 128},
                 "decoder": {"type": "mlp", "hidden": 64, "depth": 2}},
    "rbf": {"encoding": {"type": "dense", "n_levels": 4, "n_features": 8, "base_resolution": 16,
                         "finest_resolution": 128, "init_scale": 0.5},
            "decoder": {"type": "rbf", "n_units": 48, "centre_scale": 0.5}},
}


def build_encoding(spec: dict, in_dim: int) -> nn.Module:
    """An encoding from its spec ({"type": ..., keyword arguments})."""
    kind, kw = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    if kind == "hash":
        return HashGrid(dim=in_dim, **kw)
    if kind == "dense":
        return DenseGrid(dim=in_dim, **kw)
    if kind == "triplane":
        if in_dim != 3:
            raise FieldsError("a tri-plane encodes 3-D inputs; use dense for images")
        return TriPlane(**kw)
    if kind == "fourier":
        return FourierFeatures(in_dim, **kw)
    if kind == "pe":
        return PositionalEncoding(in_dim, **kw)
    raise FieldsError(f"unknown encoding {kind!r} (hash, dense, triplane, fourier, pe)")


class Field(nn.Module):
    """decoder(encoding(x), x); the raw coordinates go to CAM's grids."""

    def __init__(self, encoding: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoding, self.decoder = encoding, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoding(x)
        if isinstance(self.decoder, (CAMMLP, GaussianRBF)):
            return self.decoder(h, x)
        return self.decoder(h)

    def param_groups(self, lr: float, grid_lr: float | None = None) -> list[dict]:
        """Adam groups: feature tables at grid_lr (default 10 lr), CAM grids at 10 lr, the rest at lr."""
        grid_lr = 10.0 * lr if grid_lr is None else grid_lr
        cam = self.decoder.grid_parameters() if isinstance(self.decoder, CAMMLP) else []
        cam_ids = {id(p) for p in cam}
        enc = [p for p in self.encoding.parameters()]
        rest = [p for p in self.decoder.parameters() if id(p) not in cam_ids]
        groups = [{"params": rest, "lr": lr}]
        if enc:
            groups.append({"params": enc, "lr": grid_lr})
        if cam:
            groups.append({"params": cam, "lr": 10.0 * lr})
        return groups


def resolve_spec(name_or_spec: str | dict, cam: bool = False) -> dict:
    """A full spec from a name in FIELD_SPECS or a dict; cam=True adds CAM to an MLP decoder."""
    if isinstance(name_or_spec, str):
        if name_or_spec not in FIELD_SPECS:
            raise FieldsError(f"unknown field {name_or_spec!r} ({', '.join(FIELD_SPECS)})")
        spec = copy.deepcopy(FIELD_SPECS[name_or_spec])
    else:
        spec = copy.deepcopy(name_or_spec)
    if cam:
        if spec["decoder"]["type"] != "mlp":
            raise FieldsError("CAM modulates an MLP decoder")
        spec["cam"] = spec.get("cam") or {"grid_resolution": 32}
    return spec


def build_field(spec: dict, in_dim: int, out_dim: int) -> Field:
    encoding = build_encoding(spec["encoding"], in_dim)
    dec = {k: v for k, v in spec["decoder"].items() if k != "type"}
    kind = spec["decoder"]["type"]
    if kind == "mlp" and spec.get("cam"):
        decoder = CAMMLP(encoding.out_dim, out_dim, coord_dims=tuple(range(min(in_dim, 2))), **dec, **spec["cam"])
    elif kind == "mlp":
        decoder = MLP(encoding.out_dim, out_dim, **dec)
    elif kind == "rbf":
        decoder = GaussianRBF(encoding.out_dim, out_dim=out_dim, **dec)
    else:
        raise FieldsError(f"unknown decoder {kind!r} (mlp, rbf)")
    return Field(encoding, decoder)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
