"""The live viewer (apps/viewer/): camera conventions, training hooks (snapshots, pause), a real browser,
and `fields view`."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import demo_truth

from fields.scene import look_at

viser = pytest.importorskip("viser", reason="viser is not installed")

from apps.viewer import (  # noqa: E402
    Viewer,
    ViewerOptions,
    browser_camera,
    rotation_to_wxyz,
    scene_extent,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def demo_scene():
    """The demo scene's ground truth, prepared for training as `fields train` prepares a scene."""
    from apps.config import resolve
    from apps.pipeline import prepare_scene

    scene = demo_truth()
    prepare_scene(scene, resolve("default", []))
    return scene


def test_browser_camera_recovers_the_pose_and_focal_of_a_viser_camera():
    R, t = look_at(np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2, 0.0]), np.array([0.0, 0.0, 1.0]))
    centre = -R.T @ t
    fov_y = np.deg2rad(50.0)
    cam, R2, t2 = browser_camera(rotation_to_wxyz(R.T), centre, fov_y, 1.5, 300)
    assert np.allclose(R2, R, atol=1e-9) and np.allclose(t2, t, atol=1e-9)
    assert (cam.width, cam.height) == (300, 200)
    # the top edge of the image is fov_y / 2 above the optical axis
    assert np.isclose(np.arctan(0.5 * cam.height / cam.K[1, 1]), fov_y / 2)


def test_scene_extent_is_the_median_camera_distance_from_their_middle():
    ring = np.array([[np.cos(a), np.sin(a), 0.0] for a in np.linspace(0, 2 * np.pi, 12, endpoint=False)]) * 3.0
    assert np.isclose(scene_extent(ring), 3.0)


def small_model():
    from fields.neus.radiance_field import ConstantBackground
    from fields.neus.train import TrainConfig, build_model

    torch.manual_seed(0)
    model = build_model(TrainConfig(background="black", hash_levels=4, hash_log2_size=12, hash_finest=64, hidden=16))
    model.background = ConstantBackground((1.0, 0.0, 1.0))  # magenta: easy to find in a screenshot
    return model


def test_snapshots_are_whole_and_pause_holds_the_training_thread(tmp_path):
    scene = demo_scene()
    viewer = Viewer(ViewerOptions(port=0, snapshot_every_s=0.0), run=tmp_path)
    try:
        model = small_model()
        listener = viewer.training_listener(scene)
        viewer._want_snapshot = True
        assert (listener(1, model, {"loss": 0.1, "psnr": 20.0, "rays_per_s": 1.0, "total": 10}) or 0.0) == 0.0
        before = {k: v.clone() for k, v in model.state_dict().items()}
        snap = viewer.snap.model
        assert all(torch.equal(snap.state_dict()[k], v) for k, v in before.items())
        with torch.no_grad():  # an optimiser step after the copy does not reach the snapshot
            for p in model.parameters():
                p.add_(1.0)
        assert all(torch.equal(snap.state_dict()[k], v) for k, v in before.items())

        viewer._toggle_pause()
        held = []
        th = threading.Thread(target=lambda: held.append(listener(2, model, None)))
        t0 = time.perf_counter()
        th.start()
        time.sleep(0.5)
        assert th.is_alive(), "a paused viewer must hold the training thread"
        viewer._toggle_pause()
        th.join(timeout=5)
        # the paused time it reports is positive and no longer than it held the thread (the thread may
        # reach the pause late on two busy cores)
        assert not th.is_alive() and 0.0 < held[0] <= time.perf_counter() - t0
        # pausing asks for a copy: the one taken at step 2 is the model as it stood then
        assert viewer.snap.step == 2
        assert all(torch.equal(viewer.snap.model.state_dict()[k], v) for k, v in model.state_dict().items())
    finally:
        viewer.close()


def screenshot_colours(page, path: Path) -> np.ndarray:
    from PIL import Image

    page.screenshot(path=str(path))
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def count(img: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> int:
    return int((np.abs(img - np.array(rgb)).max(-1) < tol).sum())


def wait_for(page, path: Path, rgb: tuple[int, int, int], least: int, seconds: float = 40.0) -> np.ndarray:
    deadline = time.time() + seconds
    while True:
        img = screenshot_colours(page, path)
        if count(img, rgb) >= least or time.time() > deadline:
            return img
        time.sleep(0.5)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package chromium)")
def test_real_browser_sees_frustums_points_and_a_rendered_background(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from sfm.neural.state import SfMSnapshot

    scene = demo_scene()
    viewer = Viewer(ViewerOptions(port=0, duty=0.5), run=tmp_path)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
            page = browser.new_page(viewport={"width": 960, "height": 640})
            page.goto(viewer.url)
            page.wait_for_selector("canvas", timeout=60000)
            time.sleep(2.0)
            empty = screenshot_colours(page, tmp_path / "empty.png")
            assert count(empty, (230, 80, 40)) < 50 and count(empty, (60, 200, 90)) < 50

            viewer.show_inputs(scene)
            poses = {i: (scene.views[i].R, scene.views[i].t) for i in scene.registered()}
            points = np.random.default_rng(0).normal(size=(400, 3)) * 0.3
            viewer.sfm_update(SfMSnapshot("test", poses, [scene.camera_of(i) for i in range(len(scene.views))], points))
            img = wait_for(page, tmp_path / "cameras.png", (230, 80, 40), 500)
            assert count(img, (230, 80, 40)) >= 500, "no camera frustums drawn"
            img = wait_for(page, tmp_path / "points.png", (60, 200, 90), 100)  # they may arrive a frame later
            assert count(img, (60, 200, 90)) >= 100, "no sparse points drawn"

            viewer.show_model(small_model(), 0)
            img = wait_for(page, tmp_path / "render.png", (255, 0, 255), 20000)
            assert count(img, (255, 0, 255), tol=20) >= 20000, "no rendered background from the field"
            assert img.std() > 20, "blank screenshot"
            browser.close()
    finally:
        viewer.close()


def test_fields_view_opens_a_trained_run_and_stops(tmp_path, capsys):
    from apps.cli import main
    from fields.neus.train import TrainConfig, train

    scene = demo_scene()
    run = tmp_path / "run"
    scene.save(run)
    cfg = TrainConfig(steps=3, rays_per_batch=64, n_samples=16, hash_levels=4, hash_log2_size=12, hash_finest=64,
                      hidden=16, max_image_size=48, occupancy_every=0)
    train(scene, cfg, run, log=lambda *a: None)
    assert main(["view", str(run), "--port", "0", "--seconds", "1"]) == 0
    assert "viewing" in capsys.readouterr().out
    assert main(["view", str(tmp_path / "nothing")]) == 2
