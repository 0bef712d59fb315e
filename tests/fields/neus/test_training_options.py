"""The training loop's options (fields/neus/sdf_field.py, regularisers.py, train.py): SDF field variants,
backgrounds, masks, and the curvature, sparse-point and anchor terms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from fields.neus.regularisers import (
    curvature_loss,
    eikonal_term,
    pick_points,
    uniform_points,
)
from fields.neus.sdf_field import SDFField
from fields.neus.train import (
    TrainConfig,
    anchor_points,
    build_model,
    draw_rays,
    ray_bank,
    resolve_background,
)
from fields.scene import Points
from sfm.io.transforms_json import read_transforms, write_transforms

VARIANTS = [("hash", "mlp", False), ("triplane", "mlp", False), ("hash", "rbf", False), ("hash", "mlp", True)]


@pytest.mark.parametrize("encoding,decoder,cam", VARIANTS)
def test_every_sdf_variant_starts_near_the_sphere_and_has_second_derivatives(encoding, decoder, cam):
    torch.manual_seed(0)
    cfg = TrainConfig(sdf_encoding=encoding, sdf_decoder=decoder, cam=cam, background="white")
    model = build_model(cfg)
    x = torch.nn.functional.normalize(torch.randn(2000, 3), dim=-1) * torch.rand(2000, 1)
    sdf, _, grad = model.sdf.gradient(x, create_graph=True)
    # the geometric init of a 64-wide layer is a noisy |x| - 0.5 (the RBF residual is exact)
    assert (sdf - (x.norm(dim=-1) - 0.5)).abs().mean() < (1e-6 if decoder == "rbf" else 0.2)
    assert torch.all(sdf[x.norm(dim=-1) < 0.2] < 0)
    _, _, uniform = model.sdf.gradient(uniform_points(64, torch.Generator().manual_seed(0), x.device))
    eikonal_term(torch.cat([grad, uniform])).backward()  # the Eikonal term differentiates the gradient: every variant must support it
    grads = [p.grad for p in model.sdf.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_cam_with_identity_grids_is_exactly_the_plain_sdf_mlp():
    torch.manual_seed(1)
    plain = SDFField(hidden=32)
    cam = SDFField(hidden=32, cam=True)
    cam.encoding.load_state_dict(plain.encoding.state_dict())
    cam.decoder.mlp.load_state_dict(plain.decoder.state_dict())
    x = torch.rand(100, 3) * 2 - 1
    assert torch.allclose(cam.sdf(x), plain.sdf(x), atol=1e-6)  # interpolated ones sum to 1 up to rounding


class Plane(torch.nn.Module):
    def gradient(self, x, create_graph=True):
        return x[:, 2], None, torch.tensor([0.0, 0.0, 1.0]).expand(x.shape[0], 3)


class Sphere(torch.nn.Module):
    def __init__(self, r):
        super().__init__()
        self.r = r

    def gradient(self, x, create_graph=True):
        return x.norm(dim=-1) - self.r, None, x / x.norm(dim=-1, keepdim=True)


def test_curvature_term_is_zero_on_a_plane_and_eps_pi_over_4r_on_a_sphere():
    gen = torch.Generator().manual_seed(0)
    pts = torch.nn.functional.normalize(torch.randn(20000, 3, generator=gen), dim=-1) * 0.5
    plane = curvature_loss(Plane(), pts, torch.tensor([0.0, 0.0, 1.0]).expand(20000, 3), 20000, 0.01, gen)
    assert plane.abs() < 1e-7
    # a step of length eps turns the normal of a radius-r sphere by |tangential part| / r; the mean
    # tangential length of a random unit step is pi / 4
    sphere = curvature_loss(Sphere(0.5), pts, pts / 0.5, 20000, 0.01, gen)
    assert sphere.item() == pytest.approx(0.01 * math.pi / (4 * 0.5), rel=0.03)


def _tiny_scene(folder, rgba: bool, mask_files: bool):
    """Three 16x12 images looking at the origin, written with a transforms.json."""
    frames = []
    for k in range(3):
        rgb = np.full((12, 16, 3), 60 * k, np.uint8)
        alpha = np.zeros((12, 16), np.uint8)
        alpha[3:9, 4:12] = 255
        arr = np.dstack([rgb, alpha]) if rgba else rgb
        Image.fromarray(arr).save(folder / f"im{k}.png")
        frame = {"file_path": f"im{k}.png", "transform_matrix": np.eye(4).tolist()}
        frame["transform_matrix"][2][3] = 3.0 + k
        if mask_files:
            Image.fromarray(alpha).save(folder / f"mask{k}.png")
            frame["mask_path"] = f"mask{k}.png"
        frames.append(frame)
    meta = {"fl_x": 20.0, "fl_y": 20.0, "cx": 8.0, "cy": 6.0, "w": 16, "h": 12, "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(meta))
    return read_transforms(folder / "transforms.json")


def test_alpha_images_train_on_white_with_their_alpha_as_mask(tmp_path):
    scene = _tiny_scene(tmp_path, rgba=True, mask_files=False)
    cfg = resolve_background(TrainConfig(), scene, scene.train_views())
    assert cfg.background == "white"
    bank = ray_bank(scene, scene.train_views(), 16, cfg.background)
    assert bank.mask is not None and bank.colour_weight is None
    assert bank.mask.sum().item() == pytest.approx(3 * 6 * 8)
    outside = bank.mask == 0
    assert torch.all(bank.rgb[outside] == 1.0)  # composited on the white background


def test_mask_files_survive_a_round_trip_and_weight_the_colour_loss(tmp_path):
    scene = _tiny_scene(tmp_path, rgba=False, mask_files=True)
    assert resolve_background(TrainConfig(), scene, scene.train_views()).background == "learned"
    out = tmp_path / "out"
    out.mkdir()
    write_transforms(scene, out / "transforms.json")
    again = read_transforms(out / "transforms.json")
    assert [v.mask.name for v in again.views] == ["mask0.png", "mask1.png", "mask2.png"]
    bank = ray_bank(again, again.train_views(), 16, "learned")
    assert bank.colour_weight is not None and torch.equal(bank.colour_weight, bank.mask)
    assert bank.mask.sum().item() == pytest.approx(3 * 6 * 8)


def test_rgb_images_without_masks_have_no_mask(tmp_path):
    scene = _tiny_scene(tmp_path, rgba=False, mask_files=False)
    bank = ray_bank(scene, scene.train_views(), 16, "learned")
    assert bank.mask is None and bank.foreground() is None
    # without masks a foreground share changes nothing: the same draws as a plain uniform batch
    drawn = draw_rays(len(bank), bank.foreground(), 64, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(drawn, torch.randint(0, len(bank), (64,), generator=torch.Generator().manual_seed(3)))


def test_foreground_share_of_a_batch_comes_from_the_object(tmp_path):
    scene = _tiny_scene(tmp_path, rgba=True, mask_files=False)
    bank = ray_bank(scene, scene.train_views(), 16, "white")
    fg = bank.foreground()
    assert fg is not None and torch.all(bank.mask[fg] > 0.5) and fg.numel() == int((bank.mask > 0.5).sum())
    gen = torch.Generator().manual_seed(0)
    on_object = torch.stack([bank.mask[draw_rays(len(bank), fg, 200, 0.5, gen)] > 0.5 for _ in range(50)]).float()
    uniform_share = float((bank.mask > 0.5).float().mean())
    expected = 0.5 + 0.5 * uniform_share  # half from the object, half uniform
    assert on_object.mean().item() == pytest.approx(expected, abs=0.02)
    assert torch.all(bank.mask[draw_rays(len(bank), fg, 100, 1.0, gen)] > 0.5)


def test_sparse_points_pull_the_zero_level_set_onto_them():
    # the field starts as the sphere |x| = 0.5; points on a plane z = 0.3 must end up on its surface
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    field = SDFField()
    xy = torch.rand(400, 2, generator=gen) * 0.8 - 0.4
    plane = torch.cat([xy, torch.full((400, 1), 0.3)], dim=1)
    before = field.sdf(plane).abs().mean().item()
    opt = torch.optim.Adam(field.parameters(), lr=5e-3)
    for _ in range(150):
        _, _, grad = field.gradient(uniform_points(256, gen, plane.device))
        loss = field.sdf(pick_points(plane, 256, gen)).abs().mean() + 0.1 * eikonal_term(grad)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = field.sdf(plane).abs().mean().item()
    assert before > 0.05 and after < 0.1 * before


def test_anchor_points_need_two_training_views_and_the_unit_sphere(tmp_path):
    scene = _tiny_scene(tmp_path, rgba=False, mask_files=False)
    scene.points = Points(np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [50.0, 0.0, 0.0]]),
                          np.zeros((4, 3), np.uint8),
                          [np.array([[0, 0], [1, 0]]), np.array([[0, 1], [2, 1]]), np.array([[2, 2]]),
                           np.array([[0, 3], [1, 3]])])
    xyz = anchor_points(scene, [0, 1]).numpy()  # view 2 held out: the second point has one training view
    assert xyz.shape == (1, 3)
    assert np.allclose(xyz[0], scene.to_normalised.apply(np.zeros((1, 3)))[0], atol=1e-6)
    assert anchor_points(scene, [0, 1, 2]).shape == (2, 3)  # the far point stays outside the unit sphere
