"""Encodings and decoders of the field library against analytic cases and direct formulas."""

from __future__ import annotations

import math

import pytest
import torch

from fields.encodings.dense_grid import DenseGrid
from fields.encodings.fourier import FourierFeatures, PositionalEncoding
from fields.encodings.interpolation import grid_interpolate
from fields.encodings.triplane import TriPlane
from fields.errors import FieldsError
from fields.fit.image import fit_image, pixel_coordinates
from fields.nn.builder import FIELD_SPECS, build_field, resolve_spec
from fields.nn.cam import CAMMLP
from fields.nn.mlp import MLP
from fields.nn.rbf import GaussianRBF


def test_grid_interpolation_is_exact_for_multilinear_functions_and_twice_differentiable():
    res = 9
    axis = torch.linspace(0, 1, res)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")  # table index = x + y * res
    table = (2 * gx + 3 * gy + gx * gy).reshape(-1, 1)
    x = torch.rand(50, 2, requires_grad=True)
    v = grid_interpolate(table, x, res)[:, 0]
    assert torch.allclose(v, 2 * x[:, 0] + 3 * x[:, 1] + x[:, 0] * x[:, 1], atol=1e-5)
    (g,) = torch.autograd.grad(v.sum(), x, create_graph=True)
    assert torch.allclose(g[:, 0], 2 + x[:, 1], atol=1e-4)
    g.sum().backward()


def test_positional_encoding_and_fourier_features_formulas():
    x = torch.tensor([[0.25, 0.5]])
    pe = PositionalEncoding(2, n_frequencies=2)(x)
    expected = [0.25, 0.5] + [math.sin(a) for a in (0.25 * math.pi, 0.5 * math.pi, 0.5 * math.pi, math.pi)] + \
        [math.cos(a) for a in (0.25 * math.pi, 0.5 * math.pi, 0.5 * math.pi, math.pi)]
    assert torch.allclose(pe[0], torch.tensor(expected), atol=1e-6)
    ff = FourierFeatures(2, n_frequencies=4096, sigma=3.0)
    assert ff.out_dim == 8192 and ff.B.std().item() == pytest.approx(3.0, rel=0.05)
    assert torch.allclose(ff(x)[:, :4096] ** 2 + ff(x)[:, 4096:] ** 2, torch.ones(1, 4096), atol=1e-5)


def test_triplane_sum_and_product_of_planes():
    tp = TriPlane(channels=2, resolution=5, reduce="sum")
    with torch.no_grad():
        tp.planes.zero_()
        tp.planes[0, :, 0] = 1.0  # xy plane constant 1 on channel 0
        tp.planes[2, :, 1] = 2.0  # yz plane constant 2 on channel 1
    out = tp(torch.rand(7, 3))
    assert torch.allclose(out, torch.tensor([1.0, 2.0]).expand(7, 2))
    prod = TriPlane(channels=1, resolution=5, reduce="product")
    with torch.no_grad():
        prod.planes[:] = torch.tensor([2.0, 3.0, 4.0])[:, None, None]
    assert torch.allclose(prod(torch.rand(3, 3)), torch.full((3, 1), 24.0))


def test_dense_grid_levels_are_geometric():
    g = DenseGrid(dim=2, n_levels=4, n_features=3, base_resolution=16, finest_resolution=128)
    assert g.resolutions == [16, 32, 64, 128] and g.out_dim == 12
    assert g(torch.rand(5, 2)).shape == (5, 12)


def test_cam_with_identity_grids_and_no_normalisation_is_the_plain_mlp():
    torch.manual_seed(0)
    cam = CAMMLP(10, 3, hidden=32, depth=3, normalise=False)
    plain = MLP(10, 3, hidden=32, depth=3)
    plain.load_state_dict(cam.mlp.state_dict())
    h, c = torch.randn(20, 10), torch.rand(20, 2)
    assert torch.equal(cam(h, c), plain(h))
    with torch.no_grad():
        cam.betas[0].add_(0.5)
    assert not torch.allclose(cam(h, c), plain(h))


def test_cam_grids_train_at_ten_times_the_learning_rate():
    f = build_field(resolve_spec("fourier", cam=True), 2, 3)
    groups = f.param_groups(1e-3)
    cam_group = [g for g in groups if any(p is f.decoder.gammas[0] for p in g["params"])][0]
    assert cam_group["lr"] == pytest.approx(1e-2)
    extra = sum(p.numel() for p in f.decoder.grid_parameters())
    assert extra / (sum(p.numel() for p in f.parameters()) - extra) <= 0.03  # the paper's budget


def test_rbf_layer_matches_the_direct_formula():
    torch.manual_seed(0)
    rbf = GaussianRBF(in_dim=5, n_units=7, out_dim=2)
    with torch.no_grad():
        rbf.log_precision.normal_()
    f = torch.randn(11, 5)
    p = torch.exp(rbf.log_precision)
    direct = torch.exp(-(p[None] * (f[:, None, :] - rbf.centres[None]) ** 2).sum(-1))
    assert torch.allclose(torch.exp(-rbf.squared_distances(f).clamp_min(0)), direct, atol=1e-5)
    assert torch.allclose(rbf(f), direct @ rbf.out.weight.T + rbf.out.bias, atol=1e-5)


def test_every_named_field_builds_and_unknown_names_fail_cleanly():
    for name in FIELD_SPECS:
        dim = 3 if name == "triplane" else 2
        f = build_field(resolve_spec(name), dim, 3)
        assert f(torch.rand(4, dim)).shape == (4, 3)
    with pytest.raises(FieldsError):
        resolve_spec("siren")
    with pytest.raises(FieldsError):
        resolve_spec("rbf", cam=True)


def test_fitting_a_smooth_image_reaches_a_high_psnr():
    h, w = 24, 32
    xy = pixel_coordinates(h, w)
    img = torch.stack([0.5 + 0.4 * torch.sin(3 * xy[:, 0]), xy[:, 1], 0.5 * xy[:, 0] * xy[:, 1]], -1).reshape(h, w, 3)
    f = build_field(resolve_spec("dense"), 2, 3)
    fit = fit_image(f, img.numpy(), steps=300, lr=1e-2)
    assert fit.psnr > 35.0 and fit.image.shape == (h, w, 3)


def test_fit_image_command_writes_the_reconstruction_and_prints_psnr(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from apps.cli import main

    xy = np.stack(np.meshgrid(np.linspace(0, 1, 40), np.linspace(0, 1, 30)), -1)
    Image.fromarray((np.concatenate([xy, xy[..., :1] * xy[..., 1:]], -1) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    assert main(["fit", "image", str(tmp_path / "a.png"), "--field", "dense", "--steps", "50", "--lr", "1e-2",
                 "-o", str(tmp_path / "out.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PSNR ") and float(out.split()[1]) > 20.0
    assert Image.open(tmp_path / "out.png").size == (40, 30)


def test_spherical_harmonics_are_orthonormal_and_rotation_invariant_per_band():
    """The SH view encoding: orthonormal over the sphere (Fibonacci quadrature) and, by the addition
    theorem, each band's squared sum is (2l + 1) / 4 pi in every direction."""
    from fields.encodings.spherical_harmonics import real_sh

    n = 200_000
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = math.pi * (1.0 + 5**0.5) * i
    r = (1.0 - z * z).sqrt()
    d = torch.stack([r * phi.cos(), r * phi.sin(), z], 1)
    Y = real_sh(d, 4)
    gram = Y.T @ Y * 4.0 * math.pi / n
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=1e-5)
    for band in range(4):
        energy = (Y[:, band * band:(band + 1) ** 2] ** 2).sum(1)
        assert torch.allclose(energy, torch.full_like(energy, (2 * band + 1) / (4.0 * math.pi)), atol=1e-9)
