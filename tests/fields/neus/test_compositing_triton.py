"""The packed compositing kernel (fields/neus/compositing_triton.py) against a plain PyTorch loop and
against rendering.alpha_weights: values, opacity and both gradients, rays of any length (empty ones
too). Without a GPU it runs on CPU tensors through Triton's interpreter."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton compiles anything
pytest.importorskip("triton", reason="triton is not installed (pip install '.[test]')")

from fields.neus.compositing_triton import composite_packed  # noqa: E402
from fields.neus.rendering import alpha_weights  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def composite_reference(alpha: torch.Tensor, values: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's computation in plain PyTorch, a loop over rays."""
    outs, ops = [], []
    for r in range(offsets.numel() - 1):
        a, v = alpha[offsets[r]:offsets[r + 1]], values[offsets[r]:offsets[r + 1]]
        trans = torch.cumprod(torch.cat([a.new_ones(1), 1.0 - a[:-1] + 1e-7]), 0)
        w = a * trans
        outs.append((w[:, None] * v).sum(0))
        ops.append(w.sum())
    return torch.stack(outs), torch.stack(ops)



def packed(channels: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 12, (70,), generator=gen)
    counts[3] = 0
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
    m = int(offsets[-1])
    alpha = torch.rand(m, generator=gen) ** 3  # mostly small, as along real rays
    alpha[::17] = 1.0  # fully opaque samples
    values = torch.randn(m, channels, generator=gen)
    return alpha.to(DEVICE), values.to(DEVICE), offsets.to(DEVICE)


@pytest.mark.parametrize("channels", [3, 7])
def test_forward_and_gradients_match_the_reference(channels):
    alpha, values, offsets = packed(channels)
    g = torch.randn(offsets.numel() - 1, channels, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    g_op = torch.randn(offsets.numel() - 1, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    results = []
    for fn in (composite_packed, composite_reference):
        a, v = alpha.clone().requires_grad_(True), values.clone().requires_grad_(True)
        out, opacity = fn(a, v, offsets)
        grads = torch.autograd.grad((out * g).sum() + (opacity * g_op).sum(), (a, v))
        results.append((out.detach(), opacity.detach(), *grads))
    for kernel, reference in zip(*results):
        assert torch.allclose(kernel, reference, atol=1e-5, rtol=1e-4)
    assert float(results[0][1][3]) == 0.0  # the empty ray


def test_equal_lengths_agree_with_the_dense_weights():
    gen = torch.Generator().manual_seed(3)
    alpha = torch.rand(20, 16, generator=gen)
    values = torch.rand(20, 16, 3, generator=gen)
    offsets = torch.arange(21, dtype=torch.int64) * 16
    out, opacity = composite_packed(alpha.reshape(-1).to(DEVICE), values.reshape(-1, 3).to(DEVICE), offsets.to(DEVICE))
    w = alpha_weights(alpha)
    assert torch.allclose(out.cpu(), (w[..., None] * values).sum(1), atol=1e-5)
    assert torch.allclose(opacity.cpu(), w.sum(1), atol=1e-5)


def test_the_training_render_composites_the_same_through_the_kernel(monkeypatch):
    from test_rendering import sphere_model

    from fields.geometry.rays import sphere_bounds
    from fields.neus import rendering

    model = sphere_model()
    gen = torch.Generator().manual_seed(4)
    o = torch.tensor([[0.0, 0.0, -3.0]]) + torch.rand(64, 3, generator=gen) * 0.1
    d = torch.nn.functional.normalize(torch.rand(64, 3, generator=gen) * 1.2 - 0.6 - o, dim=-1)
    near, far, _ = sphere_bounds(o, d)
    outs = []
    for kernel in (False, True):
        monkeypatch.setattr(rendering, "packed_compositing", lambda t, k=kernel: k)
        model.sharpness.variance.grad = None
        out = rendering.render_rays(model, o, d, near, far, n_samples=48, perturb=False)
        (out.rgb.sum() + out.depth.sum() + out.normal.sum()).backward()
        outs.append((out.rgb.detach(), out.depth.detach(), out.normal.detach(), model.sharpness.variance.grad.clone()))
    for kernel, torch_path in zip(outs[1], outs[0]):
        assert torch.allclose(kernel, torch_path, atol=1e-4, rtol=1e-4)
