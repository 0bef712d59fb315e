"""Points kept on an SDF's zero level set by Newton steps (Level-S2fM's point management).

One step x - f(x) grad f(x) / |grad f(x)|^2 lands exactly on the surface of a true distance
function and converges quadratically for any smooth f near a regular zero. Keeping the graph makes
the snapped points functions of the field's parameters, so a reprojection loss on them trains the
SDF (the neural bundle adjustment) instead of treating the points as free variables.
"""

from __future__ import annotations

from typing import Callable

import torch

SDFFn = Callable[[torch.Tensor], torch.Tensor]


def snap_step(x: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """One Newton step onto f = 0 from the SDF value f and gradient g already evaluated at x."""
    return x - (f / (g * g).sum(-1).clamp_min(1e-12))[:, None] * g


def newton_snap(sdf: SDFFn, x: torch.Tensor, steps: int = 1, create_graph: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(snapped points, |sdf| before the last step) after `steps` Newton steps onto f = 0."""
    for _ in range(steps):
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            f = sdf(xg)
            (g,) = torch.autograd.grad(f.sum(), xg, create_graph=create_graph)
        if not create_graph:
            f, g = f.detach(), g.detach()
        x = snap_step(xg, f, g)
        if not create_graph:
            x = x.detach()
    return x, f.abs()
