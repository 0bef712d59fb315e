"""Geometry regularisers of the SDF: the Eikonal term (IGR), a curvature term (PermutoSDF's form) and
the sparse SfM points as surface anchors (Geo-NeuS's explicit SDF supervision)."""

from __future__ import annotations

import torch

from fields.neus.sdf_field import SDFField


def uniform_points(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """n points drawn uniformly in [-1, 1]^3: where the Eikonal term also holds the field."""
    return (torch.rand(n, 3, generator=gen) * 2.0 - 1.0).to(device)


def eikonal_term(grads: torch.Tensor) -> torch.Tensor:
    """Mean (|grad f| - 1)^2 (IGR)."""
    return ((grads.norm(dim=-1) - 1.0) ** 2).mean()


def curvature_loss(sdf: SDFField, points: torch.Tensor, grads: torch.Tensor, n: int, eps: float,
                   gen: torch.Generator) -> torch.Tensor:
    """Mean change of the unit normal over a random step of length ~eps, at up to n of the points.

    PermutoSDF's curvature term: it flattens bumps smaller than eps that the photometric loss
    cannot see (hash-grid noise on textureless parts) without the six extra SDF evaluations per
    point of a finite-difference Laplacian.
    """
    if points.shape[0] == 0:
        return points.sum() * 0.0
    pick = torch.randperm(points.shape[0], generator=gen)[:n].to(points.device)
    step = torch.nn.functional.normalize(torch.randn(pick.shape[0], 3, generator=gen), dim=-1).to(points.device)
    _, _, moved = sdf.gradient(points[pick].detach() + eps * step, create_graph=True)
    n0 = torch.nn.functional.normalize(grads[pick], dim=-1)
    n1 = torch.nn.functional.normalize(moved, dim=-1)
    return (n0 - n1).norm(dim=-1).mean()


def pick_points(points: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Up to n of the points, drawn with replacement: a batch of the sparse SfM points, where training
    pulls |f| to zero. They were triangulated from several photos, so the surface passes through
    them (Geo-NeuS's SDF loss); it pins the surface where colour alone leaves it ambiguous (a plain,
    textured ground seen from above). The L1 form keeps the pull of a stray point bounded."""
    return points[torch.randint(0, points.shape[0], (min(n, points.shape[0]),), generator=gen).to(points.device)]
