"""fields/nn/adam.py against torch.optim.Adam (the reference implementation of the same update)."""

from __future__ import annotations

import torch

from fields.nn.adam import Adam


def test_updates_equal_torch_optim_adam_with_groups_schedules_and_missing_gradients():
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7), torch.randn(2)]
    runs = []
    for make in (lambda groups: torch.optim.Adam(groups, eps=1e-8), lambda groups: Adam(groups, eps=1e-8)):
        ps = [s.clone().requires_grad_(True) for s in start]
        opt = make([{"params": ps[:2], "lr": 0.05}, {"params": ps[2:], "lr": 0.2}])
        base = [g["lr"] for g in opt.param_groups]
        for step in range(30):
            for g, lr in zip(opt.param_groups, base):
                g["lr"] = lr * 0.9**step  # a schedule, as the neural BA's decay
            loss = (ps[0] ** 2).sum() + torch.sin(ps[1]).sum()
            if step % 3:  # the third parameter gets a gradient only on some steps
                loss = loss + (ps[2] - 1.0).pow(2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        runs.append([p.detach() for p in ps])
    for a, b in zip(*runs):
        assert torch.allclose(a, b, atol=1e-6), (a, b)
    assert not torch.allclose(runs[1][0], start[0])  # it moved
