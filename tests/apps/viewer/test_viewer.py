"""The live viewer (apps/viewer/): camera conventions, training hooks (snapshots, pause), the render and
mesh schedules, the training controls and plots, a real browser, and `fields view`."""

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

from apps.viewer import (
    Viewer,
    ViewerOptions,
    browser_camera,
    rotation_to_wxyz,
    scene_extent,
)
from apps.viewer.gui import PLOTS, plot_options
from apps.viewer.render import band_rows, render_in_bands
from apps.viewer.schedule import (
    REST_S,
    CameraRequest,
    ClientView,
    duty_share,
    idle_until,
    mesh_due,
    mesh_interval,
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


def request(t: float) -> CameraRequest:
    return CameraRequest((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, -3.0), 0.8, 1.5, t)


def test_the_latest_camera_wins_low_while_moving_full_at_rest():
    view = ClientView()
    assert view.job(0.0, 1, "RGB") is None  # no camera yet
    first, second = request(10.0), request(10.1)
    view.ask(first)
    view.ask(second)  # before the first was rendered: it replaces it
    view.ask(request(9.0))  # a camera reported late is older than the one held: ignored
    assert view.request is second and view.superseded(first) and not view.superseded(second)
    job = view.job(10.2, 1, "RGB")
    assert job.request is second and not job.high  # the camera moved 0.1 s ago: a low render
    view.done(job, 1, "RGB")
    assert view.job(10.25, 1, "RGB") is None  # sent already
    job = view.job(10.1 + REST_S, 1, "RGB")
    assert job.high  # at rest: the full render
    view.done(job, 1, "RGB")
    assert view.job(20.0, 1, "RGB") is None
    refresh = view.job(20.0, 2, "RGB")
    assert refresh.high and not refresh.urgent  # new weights: rendered again, but nobody waits for it
    assert view.job(20.0, 1, "Depth").urgent  # another mode
    view.ask(request(20.0))
    assert view.job(20.1, 2, "RGB").urgent  # a camera moved
    view.forget()
    assert view.job(20.0, 1, "RGB") is not None


def test_the_duty_cycle_holds_back_work_only_while_training():
    # after a 1 s render, with nothing training the next may start at once
    assert idle_until(100.0, 1.0, duty_share(False, False, 0.05, 0.3)) == 100.0
    # while training: 19 s of idling at rest, but only 2.3 s once a camera moves
    assert np.isclose(idle_until(100.0, 1.0, duty_share(True, False, 0.05, 0.3)), 119.0)
    assert np.isclose(idle_until(100.0, 1.0, duty_share(True, True, 0.05, 0.3)), 100.0 + 1.0 / 0.3 - 1.0)


def test_the_live_mesh_follows_the_steps_actually_planned():
    assert mesh_interval(500, 300, 4) == 75  # mesh_every beyond the run: a quarter of it
    assert mesh_interval(500, 30000, 4) == 500
    assert mesh_interval(500, None, 4) == 500  # not known yet
    assert mesh_interval(500, 2, 4) == 1
    assert mesh_due(5, -1, 75, training=True)  # none yet
    assert not mesh_due(74, 0, 75, training=True) and mesh_due(75, 0, 75, training=True)
    assert mesh_due(300, 225, 75, training=False)  # the final weights, whatever the interval
    assert not mesh_due(300, 300, 75, training=False)


def test_bands_render_the_whole_view_and_stop_when_stale():
    from fields.neus.occupancy_grid import OccupancyGrid
    from fields.neus.render_view import render_image
    from fields.scene import Camera

    assert band_rows(10, 7, rays=30) == [(0, 3), (3, 6), (6, 7)]
    model = small_model().eval().requires_grad_(False)
    cam = Camera.from_focal(12, 9, 10.0, 10.0)
    R, t = look_at(np.array([0.0, -2.5, 0.5]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    grid = OccupancyGrid.from_sdf(model.sdf.sdf, 16)
    whole = render_image(model, cam, R, t, grid=grid)
    banded = render_in_bands(model, cam, R, t, grid, lambda: False, rays=40)  # 3 rows a band
    assert banded.rgb.shape == whole.rgb.shape and np.allclose(banded.rgb, whole.rgb, atol=1e-3)
    calls = []
    # a newer camera after the first band: the rest is not rendered
    assert render_in_bands(model, cam, R, t, grid, lambda: bool(calls.append(1)) or len(calls) > 1, rays=40) is None
    assert len(calls) == 2


def test_training_controls_only_while_training_and_a_final_mesh_snapshot(tmp_path):
    scene = demo_scene()
    viewer = Viewer(ViewerOptions(port=0, snapshot_every_s=1e9, mesh_every=500, meshes_per_run=4), run=tmp_path)
    try:
        viewer.show_model(small_model(), 100)  # a finished run (fields view): nothing to pause
        assert viewer.training_controls is None and viewer._pause is None
        model = small_model()
        listener = viewer.training_listener(scene)
        folder = viewer.training_controls
        assert folder is not None and viewer._pause.label == "Pause training"
        viewer.clients[0] = ClientView()  # a browser is watching
        for step in range(1, 21):
            listener(step, model, {"loss": 0.1, "psnr": 20.0, "rays_per_s": 1e4, "total": 60} if step % 10 == 0
                     else None)
        assert viewer._mesh_interval == 15  # 60 planned steps, 4 meshes: not mesh_every's 500
        assert viewer.snap.step == 15  # the snapshot for the mesh at step 15
        viewer.training_done()
        assert viewer.training_controls is None and folder._impl.removed
        assert viewer.snap.step == 20 and not viewer.training  # the final weights, for the last mesh
        assert mesh_due(viewer.snap.step, 15, viewer._mesh_interval, viewer.training)
    finally:
        viewer.close()


def test_plots_label_their_axes():
    opts = plot_options("PSNR (dB)", "blue")
    assert [a["label"] for a in opts["axes"]] == ["step", "PSNR (dB)"]
    assert opts["legend"]["show"] is False  # no "step: --" legend
    assert {y for _, y, _, _ in PLOTS} == {"loss", "PSNR (dB)", "rays/s"}
    viewer = Viewer(ViewerOptions(port=0))
    try:
        viewer.history = [(10, 0.2, 15.0, 1e4), (20, 0.1, 18.0, 1.1e4)]
        viewer._update_plot()
        assert [p.axes[1]["label"] for p in viewer._plots] == ["loss", "PSNR (dB)", "rays/s"]
        assert all(p.axes[0]["label"] == "step" for p in viewer._plots)
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
