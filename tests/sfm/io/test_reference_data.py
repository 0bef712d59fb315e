"""The readers (sfm/io/) on the real files in ../shared/data, checked against what the ground truth
must satisfy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import data_path

from fields.errors import FieldsError
from fields.geometry.normalisation import optical_axes_focus
from sfm.io import (
    load_scene,
    read_colmap,
    read_transforms,
    write_colmap,
    write_transforms,
)
from sfm.io.image_folder import read_image_folder


def project(scene, i, X):
    v, cam = scene.views[i], scene.camera_of(i)
    x = cam.K @ (v.R @ X + v.t)
    return x[:2] / x[2], x[2]


def test_middlebury_bbox_centre_projects_inside_every_dino_image():
    scene = load_scene(data_path("middlebury", "dinoSparseRing", "dinoSR_par.txt"))
    assert len(scene.views) == 16
    centre = 0.5 * (np.array([-0.061897, -0.018874, -0.057845]) + np.array([0.010897, 0.068227, 0.015495]))
    for i in range(16):
        uv, z = project(scene, i, centre)
        cam = scene.camera_of(i)
        assert z > 0
        assert 0 <= uv[0] < cam.width and 0 <= uv[1] < cam.height, scene.views[i].name


def test_strecha_optical_axes_converge_on_the_facade():
    scene = load_scene(data_path("strecha", "Herz-Jesus-P8"))
    assert len(scene.views) == 8
    focus = optical_axes_focus(scene)
    assert focus is not None
    for i in range(8):
        v = scene.views[i]
        to_focus = focus - v.center
        depth = v.R[2] @ to_focus
        off_axis = np.linalg.norm(to_focus - depth * v.R[2])
        assert depth > 0 and off_axis < 0.2 * depth  # the focus is ahead, near every optical axis
        uv, _ = project(scene, i, focus)
        cam = scene.camera_of(i)
        assert 0 <= uv[0] < cam.width and 0 <= uv[1] < cam.height


def test_lego_cameras_on_a_sphere_looking_at_the_origin():
    scene = load_scene(data_path("nerf_synthetic", "lego"))
    train = [i for i, v in enumerate(scene.views) if v.split == "train"]
    test = [i for i, v in enumerate(scene.views) if v.split == "test"]
    assert len(train) == 100 and len(test) == 25
    radii = np.linalg.norm(scene.centers(), axis=1)
    assert radii.std() / radii.mean() < 1e-3
    for i in scene.registered():
        v = scene.views[i]
        cos = v.R[2] @ (-v.center) / np.linalg.norm(v.center)
        assert cos > np.cos(np.radians(1.0))
    cam = scene.camera_of(0)
    assert (cam.width, cam.height) == (800, 800)
    assert cam.K[0, 0] == pytest.approx(400 / np.tan(0.6911112070083618 / 2))


def test_colmap_transforms_colmap_round_trip_keeps_every_pose(tmp_path):
    lego = load_scene(data_path("nerf_synthetic", "lego"))
    write_colmap(lego, tmp_path / "a")
    first = read_colmap(tmp_path / "a", image_dir=data_path("nerf_synthetic", "lego"))
    for v in first.views:
        v.path = data_path("nerf_synthetic", "lego") / v.name
    write_transforms(first, tmp_path / "transforms.json")
    second = read_transforms(tmp_path / "transforms.json")
    write_colmap(second, tmp_path / "b")
    third = read_colmap(tmp_path / "b")
    assert len(third.views) == len(first.views) == 125
    for a, b in zip(sorted(first.views, key=lambda v: v.name), sorted(third.views, key=lambda v: v.name)):
        assert a.name == b.name
        assert np.abs(a.R - b.R).max() < 1e-9 and np.abs(a.t - b.t).max() < 1e-9
    assert np.allclose(first.cameras[0].K, third.cameras[0].K, atol=1e-9)


def test_transforms_with_missing_files_skips_them_with_a_warning(tmp_path):
    lego = data_path("nerf_synthetic", "lego")
    meta = json.loads((lego / "transforms_train.json").read_text())
    meta["frames"] = [dict(f, file_path=str(lego / f["file_path"])) for f in meta["frames"][:5]]
    meta["frames"] += [dict(meta["frames"][0], file_path="./nowhere/r_999")] * 3
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="skipped 3 of 8"):
        scene = read_transforms(tmp_path / "transforms.json")
    assert len(scene.views) == 5


def test_llff_fern_is_forward_facing():
    scene = load_scene(data_path("llff", "fern"))
    assert len(scene.views) == 20
    cam = scene.camera_of(0)
    assert (cam.width, cam.height) == (504, 378)
    axes = np.array([v.R[2] for v in scene.views])
    mean = axes.mean(0) / np.linalg.norm(axes.mean(0))
    assert np.degrees(np.arccos(np.clip(axes @ mean, -1, 1))).max() < 20.0
    # the scene (between near and far) lies in front of every camera
    near = np.load(data_path("llff", "fern", "poses_bounds.npy"))[:, 15].min()
    v0 = scene.views[0]
    p = v0.center + 2 * near * v0.R[2]
    for v in scene.views:
        assert v.R[2] @ (p - v.center) > 0


def test_image_folder_skips_non_images_and_reads_exif_focal():
    with pytest.warns(UserWarning, match="Thumbs.db"):
        dino = read_image_folder(data_path("middlebury", "dinoSparseRing"))
    assert len(dino.views) == 16 and not dino.registered()
    assert dino.cameras[0].K[0, 0] == pytest.approx(1.2 * 640) and not dino.cameras[0].focal_known  # no EXIF
    with pytest.warns(UserWarning, match="Thumbs.db"):  # a field of view given for photos without EXIF
        narrow = read_image_folder(data_path("middlebury", "dinoSparseRing"), fov_deg=11.0)
    assert narrow.cameras[0].K[0, 0] == pytest.approx(320.0 / np.tan(np.radians(5.5))) and narrow.cameras[0].focal_known
    with pytest.raises(FieldsError, match="between 0 and 180"):
        read_image_folder(data_path("middlebury", "dinoSparseRing"), fov_deg=180.0)
    kermit = read_image_folder(data_path("bundler", "kermit"))
    assert len(kermit.views) == 11
    f = kermit.cameras[0].K[0, 0]
    assert f != pytest.approx(1.2 * 640)  # an EXIF focal, not the default
    assert 300 < f < 1500 and kermit.cameras[0].focal_known


def test_colmap_reader_takes_the_largest_sub_model(tmp_path):
    import copy

    lego = load_scene(data_path("nerf_synthetic", "lego"))
    small, big = copy.deepcopy(lego), copy.deepcopy(lego)
    for v in small.views[10:]:
        v.R = v.t = None
    for v in big.views[60:]:
        v.R = v.t = None
    write_colmap(small, tmp_path / "sparse" / "0")
    write_colmap(big, tmp_path / "sparse" / "1")
    assert len(read_colmap(tmp_path / "sparse").registered()) == 60
