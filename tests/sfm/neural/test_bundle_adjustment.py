"""The neural bundle adjustment's pieces (sfm/neural/bundle_adjustment.py): gathers whose backward
repeats to the last bit, and the SO(3) exponential."""

from __future__ import annotations

import numpy as np

from sfm.neural.bundle_adjustment import rows, so3_exp


def test_the_bundle_adjustments_gathers_have_a_backward_that_repeats_to_the_last_bit():
    """Points and poses gathered per observation: on two CPU threads their gradient is the same on every
    call (plain indexing's was not, and a run's poses differed from the next run's)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = torch.Generator().manual_seed(0)
        X = torch.randn(6000, 3, generator=gen, requires_grad=True)
        index = torch.randint(0, 6000, (40000,), generator=gen)
        w = torch.randn(40000, 3, generator=gen)
        grads = [torch.autograd.grad((rows(X, index) * w).sum(), X)[0] for _ in range(20)]
        assert torch.equal(rows(X, index), X[index])
        assert all(torch.equal(g, grads[0]) for g in grads)
    finally:
        torch.set_num_threads(threads)


def test_so3_exp_matches_rodrigues_and_is_smooth_at_zero():
    import torch

    w = torch.tensor([[0.0, 0.0, np.pi / 2], [1e-9, 0.0, 0.0], [0.3, -0.2, 0.5]], dtype=torch.float64)
    R = so3_exp(w)
    assert torch.allclose(R[0], torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64),
                          atol=1e-12)
    assert torch.allclose(R[1], torch.eye(3, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(R[2] @ R[2].T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    axis = w[2] / w[2].norm()
    assert torch.allclose(R[2] @ axis, axis, atol=1e-12)  # the axis is fixed
