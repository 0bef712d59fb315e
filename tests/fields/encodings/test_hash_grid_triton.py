"""The hash grid's Triton kernels (fields/encodings/hash_grid_triton.py) against the PyTorch reference
path: features, first derivatives (points and table) and the Eikonal term's double backward, for
linear and smoothstep interpolation and with levels masked. Without a GPU they run on CPU tensors
through Triton's interpreter; skipped only when triton cannot be imported."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton compiles anything
pytest.importorskip("triton", reason="triton is not installed (pip install '.[test]')")

from fields.encodings.hash_grid import HashGrid  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def grid(interpolation: str) -> HashGrid:
    torch.manual_seed(0)
    enc = HashGrid(dim=3, n_levels=4, n_features=2, log2_hashmap_size=8, base_resolution=4, finest_resolution=64,
                   interpolation=interpolation).to(DEVICE)
    assert any(L["hashed"] for L in enc.levels) and not all(L["hashed"] for L in enc.levels)
    with torch.no_grad():
        enc.params.uniform_(-1.0, 1.0)
    enc.use_triton = True
    return enc


def points(n: int = 40) -> torch.Tensor:
    return torch.rand(n, 3, generator=torch.Generator().manual_seed(1)).to(DEVICE)


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_forward_and_first_derivatives_match_the_reference(interpolation):
    enc = grid(interpolation)
    enc.set_active_levels(3)
    x = points().requires_grad_(True)
    w = torch.randn(x.shape[0], enc.out_dim, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    from fields.encodings import hash_grid_triton

    assert enc.kernels_for(x) is hash_grid_triton
    out = enc(x)
    ref = enc.reference(x, enc.params)
    assert torch.allclose(out, ref, atol=1e-5)
    gx, gp = torch.autograd.grad((out * w).sum(), (x, enc.params))
    rx, rp = torch.autograd.grad((ref * w).sum(), (x, enc.params))
    assert torch.allclose(gx, rx, atol=1e-4, rtol=1e-4)
    assert torch.allclose(gp, rp, atol=1e-5)
    assert float(gp[enc.levels[3]["offset"]:].abs().max()) == 0.0  # the masked level learns nothing


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_double_backward_of_the_eikonal_term_matches_the_reference(interpolation):
    enc = grid(interpolation)
    head = torch.randn(enc.out_dim, generator=torch.Generator().manual_seed(3)).to(DEVICE).requires_grad_(True)
    grads = []
    for path in ("kernels", "reference"):
        x = points().requires_grad_(True)
        feats = enc(x) if path == "kernels" else enc.reference(x, enc.params)
        (g,) = torch.autograd.grad((feats * head).sum(), x, create_graph=True)  # a linear "SDF" head
        loss = ((g.norm(dim=-1) - 1.0) ** 2).mean()
        grads.append(torch.autograd.grad(loss, (enc.params, head, x)))
    for kernel, reference in zip(*grads):
        assert torch.allclose(kernel, reference, atol=1e-4, rtol=1e-3)
