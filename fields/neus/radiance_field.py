"""View-dependent colour from position, normal, view direction and the SDF's geometry feature (IDR / NeuS)."""

from __future__ import annotations

import torch
from torch import nn

from fields.encodings.spherical_harmonics import SphericalHarmonics
from fields.errors import FieldsError
from fields.nn.mlp import MLP

VIEW_ENCODINGS = ("sh", "raw")


class RadianceField(nn.Module):
    """view_encoding 'sh': the view direction enters as its real spherical harmonics (4 bands, 16
    values), 'raw': as the 3 numbers (the first runs' model)."""

    def __init__(self, n_features: int = 15, hidden: int = 64, depth: int = 2, view_encoding: str = "raw") -> None:
        super().__init__()
        if view_encoding not in VIEW_ENCODINGS:
            raise FieldsError(f"unknown view encoding {view_encoding!r} ({', '.join(VIEW_ENCODINGS)})")
        self.view = SphericalHarmonics(4) if view_encoding == "sh" else nn.Identity()
        view_dim = self.view.out_dim if view_encoding == "sh" else 3
        self.mlp = MLP(3 + view_dim + 3 + n_features, 3, hidden, depth, act="relu")

    def forward(self, x: torch.Tensor, view_dir: torch.Tensor, normal: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """view_dir: unit; normal: the SDF gradient (not normalised, as in NeuS)."""
        return torch.sigmoid(self.mlp(torch.cat([x, self.view(view_dir), normal, feature], dim=-1)))


class Background(nn.Module):
    """Colour seen past the unit sphere, a small function of the ray direction."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.mlp = MLP(3, 3, hidden, 2, act="relu")

    def forward(self, view_dir: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(view_dir))


class ConstantBackground(nn.Module):
    """A fixed background colour: what synthetic renders with alpha are composited on."""

    def __init__(self, colour: tuple[float, float, float]) -> None:
        super().__init__()
        self.register_buffer("colour", torch.tensor(colour, dtype=torch.float32))

    def forward(self, view_dir: torch.Tensor) -> torch.Tensor:
        return self.colour.expand(view_dir.shape[0], 3)


BACKGROUND_COLOURS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
BACKGROUNDS = ("learned", *BACKGROUND_COLOURS)  # what make_background builds


def make_background(kind: str) -> nn.Module:
    """'learned' (a function of the ray direction, for real photos) or a fixed 'white' / 'black'."""
    if kind == "learned":
        return Background()
    if kind in BACKGROUND_COLOURS:
        return ConstantBackground(BACKGROUND_COLOURS[kind])
    raise FieldsError(f"unknown background {kind!r} ({', '.join(BACKGROUNDS)})")


def fixed_colour(background: nn.Module) -> tuple[float, float, float] | None:
    """The colour of a constant background (None for a learned one)."""
    return tuple(background.colour.tolist()) if isinstance(background, ConstantBackground) else None
