"""The neural incremental SfM (Level-S2fM) on the demo scene, through `fields sfm --backend neural`: from
the global mapper's start (the default) and grown from one pair."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DEMO

from apps.cli import main
from fields.scene import Scene
from sfm.io import read_transforms
from sfm.neural.bundle_adjustment import rows, so3_exp
from sfm.pose_metrics import compare_poses


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
    from fields.scene import Camera, View
    from sfm.frontend.extract import FrontEndOptions
    from sfm.neural.mapper import detection_scale

    def scene(w: int, h: int) -> Scene:
        return Scene([Camera.from_fov(w, h, 1.0)], [View("a", None, 0)])

    assert detection_scale(scene(3072, 2048), FrontEndOptions()) == 3072 / 1600
    assert detection_scale(scene(2048, 3072), FrontEndOptions(max_image_size=1024)) == 3.0
    assert detection_scale(scene(400, 300), FrontEndOptions()) == 1.0
