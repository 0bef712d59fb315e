"""The demo scene in assets/ is what its description renders (apps/demo_scene.py), with consistent
poses and surface."""

from __future__ import annotations

import numpy as np
import trimesh
import yaml
from synthetic import DEMO

from apps.demo_scene import demo_cameras, render, scene_sdf
from fields.images import load_image
from sfm.io import read_transforms


def description() -> dict:
    return yaml.safe_load((DEMO / "scene.yaml").read_text())


def test_stored_images_are_reproduced_by_the_renderer():
    desc = description()
    cam, poses = demo_cameras(desc)
    for i in (5, 27):
        fresh = render(desc, cam, *poses[i]).astype(np.float32) / 255.0
        stored = load_image(DEMO / "images" / f"view_{i:03d}.jpg")
        assert stored.shape == fresh.shape == (300, 400, 3)
        assert np.abs(fresh - stored).mean() < 2.0 / 255.0  # JPEG error only


def test_ground_truth_poses_match_the_description():
    desc = description()
    cam, poses = demo_cameras(desc)
    gt = read_transforms(DEMO / "transforms.json")
    assert len(gt.views) == len(poses) >= 24
    for v, (R, t) in zip(sorted(gt.views, key=lambda v: v.name), poses):
        assert np.allclose(v.R, R, atol=1e-9) and np.allclose(v.t, t, atol=1e-9)
    assert np.allclose(gt.cameras[0].K, cam.K)


def test_surface_is_the_zero_level_set_and_assets_are_small():
    desc = description()
    mesh = trimesh.load(DEMO / "surface.ply", process=False)
    d = scene_sdf(np.asarray(mesh.vertices), desc["objects"])
    assert np.abs(d).max() < desc["surface_spacing"]
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 10 * 2**20
