"""The decoders and the field builder (fields/nn/): CAM's grids, the Gaussian RBF layer against its
direct formula, and every named field."""

from __future__ import annotations

import pytest
import torch

from fields.errors import FieldsError
from fields.nn.builder import FIELD_SPECS, build_field, resolve_spec
from fields.nn.cam import CAMMLP
from fields.nn.mlp import MLP
from fields.nn.rbf import GaussianRBF


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
