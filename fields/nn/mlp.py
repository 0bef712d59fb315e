"""Fully connected decoders: ReLU or Softplus(beta=100), optional weight norm, sphere geometric init for SDFs."""

from __future__ import annotations

import math

import torch
from torch import nn

from fields.nn.softplus import Softplus


def activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "softplus":
        return Softplus(beta=100.0)
    raise ValueError(f"unknown activation {name!r} (relu or softplus)")


class MLP(nn.Module):
    """in_dim -> [hidden] * depth -> out_dim, activation between layers, none at the end."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 64, depth: int = 2, act: str = "relu",
                 weight_norm: bool = False) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * depth + [out_dim]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.act = activation(act)
        self.weight_norm = weight_norm

    def finish_init(self) -> None:
        """Apply weight norm after any custom initialisation."""
        if self.weight_norm:
            for i, lin in enumerate(self.linears):
                self.linears[i] = nn.utils.parametrizations.weight_norm(lin)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (the output layer's input)."""
        for lin in self.linears[:-1]:
            x = self.act(lin(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linears[-1](self.hidden(x))


def sphere_init(mlp: MLP, n_coords: int, radius: float) -> None:
    """Geometric init (Atzmon & Lipman, SAL): the output starts as |x| - radius.

    The first n_coords inputs are the raw coordinates; every other input (encoded features) starts
    with zero weight so the encoding fades in during training.
    """
    lins = mlp.linears
    for i, lin in enumerate(lins):
        out_dim, in_dim = lin.weight.shape
        with torch.no_grad():
            if i == len(lins) - 1:
                nn.init.normal_(lin.weight, mean=math.sqrt(math.pi) / math.sqrt(in_dim), std=1e-4)
                nn.init.constant_(lin.bias, -radius)
            else:
                nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0) / math.sqrt(out_dim))
                nn.init.zeros_(lin.bias)
                if i == 0:
                    lin.weight[:, n_coords:] = 0.0
