"""The neural incremental SfM (Level-S2fM, sfm/neural/mapper.py) on the demo scene, through `fields sfm
--backend neural`: from the global mapper's start (the default) and grown from one pair; and the
pixel scale its error targets are given in."""

from __future__ import annotations

import json

import pytest
from synthetic import DEMO, scene_from_poses

from apps.cli import main
from fields.scene import Scene
from sfm.io import read_transforms
from sfm.pose_metrics import compare_poses


@pytest.mark.slow
@pytest.mark.parametrize("start", ["global", "pair"])
def test_neural_sfm_registers_the_demo_with_accurate_poses(tmp_path, start):
    out = tmp_path / "run"
    assert main(["sfm", str(DEMO / "images"), "-o", str(out), "--backend", "neural", "--no-viewer",
                 "--set", f"sfm.start={start}"]) == 0
    report = compare_poses(Scene.load(out), read_transforms(DEMO / "transforms.json"))
    assert report.registered == report.total == 32
    assert report.rotation_error_mean_deg < 0.5
    doc = json.loads((out / "sfm_report.json").read_text())
    assert doc["backend"] == "neural" and doc["registered"] == 32
    errors = [r["error_px"] for r in doc["per_view"]]
    assert all(r["observations"] > 20 for r in doc["per_view"]) and max(errors) < 2.0
    focal = Scene.load(out).cameras[0].K[0, 0]
    assert abs(focal - 428.9) < 5.0  # refined from the 480 px prior to the true 428.9 px


def test_the_final_error_target_is_in_pixels_of_the_images_sift_saw():
    """Photos larger than the front end's max_image_size are shrunk for SIFT; their keypoints' noise,
    and the final rounds' 1 px target, scale with them."""
    from fields.scene import Camera
    from sfm.frontend.extract import FrontEndOptions
    from sfm.neural.mapper import detection_scale

    def scene(w: int, h: int) -> Scene:
        return scene_from_poses(Camera.from_fov(w, h, 1.0), [None], name="a")

    assert detection_scale(scene(3072, 2048), FrontEndOptions()) == 3072 / 1600
    assert detection_scale(scene(2048, 3072), FrontEndOptions(max_image_size=1024)) == 3.0
    assert detection_scale(scene(400, 300), FrontEndOptions()) == 1.0
