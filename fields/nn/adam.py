"""Adam (Kingma & Ba 2015) for small optimisations, without torch.optim.

The first torch.optim optimiser a process builds imports torch._dynamo (about 1.2 s on the 2-core
machine), a noticeable share of a small neural SfM, which builds only small Adam problems
(the SDF fitted to the sparse points, the neural bundle adjustments). Training keeps torch.optim's
fused Adam, whose speed on a hash table of a million entries matters more than the import.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class Adam:
    """torch.optim.Adam's update (no weight decay, no amsgrad) and its interface as used here:
    param_groups (dicts with "params" and "lr", the lr changeable between steps), zero_grad, step."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        params = list(params)
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = [{"lr": lr, **g, "params": list(g["params"])} for g in groups]
        self.betas, self.eps = betas, eps
        self.state: dict[int, tuple[int, torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                n, m, v = self.state.get(id(p), (0, torch.zeros_like(p), torch.zeros_like(p)))
                n += 1
                m.lerp_(p.grad, 1.0 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
                denom = (v / (1.0 - b2**n)).sqrt_().add_(self.eps)
                p.addcdiv_(m, denom, value=-g["lr"] / (1.0 - b1**n))
                self.state[id(p)] = (n, m, v)
