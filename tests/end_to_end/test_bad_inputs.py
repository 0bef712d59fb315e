"""Bad input to the `fields` commands: one clear line, a non-zero exit, no traceback, nothing
half-written; kill -9 during training resumes; odd but valid photos are registered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic import DEMO, ROOT, png_bytes

from apps.cli import main


def one_line_error(capsys) -> str:
    return the_error_line(capsys.readouterr().err)


def the_error_line(err: str) -> str:
    """The one `error:` line of a command's stderr (which has no traceback)."""
    errors = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err
    return errors[0]


def noise_images(folder: Path, n: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (150, 200, 3), dtype=np.uint8)).save(folder / f"noise_{i}.png")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["reconstruct", str(tmp_path / "empty"), "-o", str(tmp_path / "run"), "--no-viewer"]) == 2
    assert "no images found" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["sfm", "reconstruct"])
def test_an_impossible_field_of_view_fails_before_a_run_folder_is_made(tmp_path, capsys, command):
    assert main([command, str(DEMO / "images"), "-o", str(tmp_path / "run"), "--no-viewer", "--set", "sfm.fov=200"]) == 2
    assert "sfm.fov must be a number >= 0 and < 180, not 200" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["reconstruct", "sfm", "train"])
@pytest.mark.parametrize("override,message", [
    ("train.steps=0", "train.steps must be an integer >= 1, not 0"),
    ("train.checkpoint_every=0", "train.checkpoint_every must be an integer >= 1, not 0"),
    ("train.lr=nan", "train.lr must be a finite number > 0, not nan"),
    ("export.mesh_format=stl", "export.mesh_format must be one of ply, obj, glb, not 'stl'"),
])
def test_a_bad_setting_fails_in_one_line_before_a_run_folder_is_made(tmp_path, capsys, command, override, message):
    data = DEMO / "images"
    assert main([command, str(data), "-o", str(tmp_path / "run"), "--set", override, "--no-viewer"]) == 2
    assert one_line_error(capsys) == f"error: {message}"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("port", ["65536", "99999", "-1", "1.5", "http"])
def test_a_viewer_port_outside_0_to_65535_is_refused_by_the_argument_parser(tmp_path, capsys, port):
    with pytest.raises(SystemExit) as exit_:
        main(["view", str(tmp_path), "--port", port])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --port: the port must be an integer >= 0 and <= 65535" in err and "Traceback" not in err


def test_the_command_line_reports_a_malformed_file_in_one_line(tmp_path, capsys):
    (tmp_path / "transforms.json").write_text('{"frames": [{"file_path": 3}]')
    assert main(["train", str(tmp_path / "transforms.json"), "-o", str(tmp_path / "run"), "--no-viewer"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_corrupt_and_non_image_files_are_skipped_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "photos"
    for i, name in enumerate(["view_000.jpg", "view_001.jpg", "view_002.jpg"]):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes((DEMO / "images" / name).read_bytes())
    data = (folder / "view_002.jpg").read_bytes()
    (folder / "view_002.jpg").write_bytes(data[: len(data) // 2])  # truncated: a valid header, half the data
    (folder / "notes.txt").write_text("not an image")
    assert main(["reconstruct", str(folder), "-o", str(tmp_path / "run"), "--no-viewer"]) == 2
    captured = capsys.readouterr().err
    assert "view_002.jpg: image file is truncated" in captured and "skipped 1 non-image file: notes.txt" in captured
    assert "found 2 images; need at least 3" in captured and "Traceback" not in captured
    assert not (tmp_path / "run").exists()


def test_a_decompression_bomb_among_photos_is_skipped_with_a_warning_naming_it(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ["view_000.jpg", "view_001.jpg"]:
        (folder / name).write_bytes((DEMO / "images" / name).read_bytes())
    (folder / "huge.png").write_bytes(png_bytes(100_000, 100_000, idat=b""))  # PIL's DecompressionBombError
    assert main(["reconstruct", str(folder), "-o", str(tmp_path / "run"), "--no-viewer"]) == 2
    captured = capsys.readouterr().err
    assert "warning: cannot read image " in captured and "huge.png: it claims 10,000 megapixels" in captured
    assert "found 2 images; need at least 3" in the_error_line(captured)
    assert not (tmp_path / "run").exists()


def test_fit_image_on_a_decompression_bomb_is_one_error_line(tmp_path, capsys):
    (tmp_path / "huge.png").write_bytes(png_bytes(20_000, 15_000))
    assert main(["fit", "image", str(tmp_path / "huge.png"), "--steps", "1"]) == 2
    assert "huge.png: it claims 20000 x 15000 pixels, over the 200-megapixel limit" in one_line_error(capsys)


def test_photos_that_share_nothing_name_the_views_that_could_not_be_registered(tmp_path, capsys):
    noise_images(tmp_path / "noise", 3)
    assert main(["sfm", str(tmp_path / "noise"), "-o", str(tmp_path / "run"), "--no-viewer",
                 "--set", "sfm.max_image_size=200"]) == 2
    line = one_line_error(capsys)
    assert "noise_0.png" in line and "noise_2.png" in line and "overlap" in line
    assert not (tmp_path / "run" / "transforms.json").exists()


def test_kill_9_during_training_leaves_a_whole_checkpoint_and_the_rerun_resumes_from_it(tmp_path):
    run, every = tmp_path / "run", 10

    def command(steps: int) -> list[str]:
        return [sys.executable, "-m", "apps.cli", "train", str(DEMO / "transforms.json"), "-o", str(run),
                "--no-viewer", "--set", f"train.steps={steps}", "--set", f"train.checkpoint_every={every}",
                "--set", "train.max_image_size=64", "--set", "train.rays_per_batch=128"]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command(100000), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run / "checkpoints" / "field.pt"
    seen = 0
    try:
        deadline = time.time() + 240
        while time.time() < deadline and seen < 3 * every:
            time.sleep(0.2)
            if ckpt.is_file():
                try:
                    seen = int(torch.load(ckpt, weights_only=True)["step"])
                except Exception:  # replaced while being read; the next poll reads the new one
                    continue
        assert seen >= 3 * every, "training did not reach three checkpoints in time"
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-step, possibly mid-checkpoint
        proc.wait()
    saved = torch.load(ckpt, weights_only=True)  # whole and loadable after kill -9
    assert saved["step"] % every == 0 and saved["step"] >= seen
    resumed = subprocess.run(command(saved["step"] + 5), cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming training at step {saved['step']}" in resumed.stdout + resumed.stderr
    assert int(torch.load(ckpt, weights_only=True)["step"]) == saved["step"] + 5


def test_mixed_sizes_and_a_50_megapixel_photo_are_registered(tmp_path):
    """Views of other sizes get their own camera; a 50 MP photo is shrunk for SIFT and registered."""
    from fields.scene import Scene

    folder = tmp_path / "photos"
    folder.mkdir()
    names = sorted(p.name for p in (DEMO / "images").glob("*.jpg"))
    for k, name in enumerate(names):
        im = Image.open(DEMO / "images" / name)
        if k == 3:
            im = im.resize((8660, 5774), Image.Resampling.BICUBIC)  # 50 megapixels
        elif k % 4 == 1:
            im = im.resize((300, 225), Image.Resampling.LANCZOS)
        im.save(folder / name, quality=95)
    run = tmp_path / "run"
    assert main(["sfm", str(folder), "-o", str(run), "--no-viewer", "--backend", "colmap"]) == 0
    scene = Scene.load(run)
    sizes = {(c.width, c.height) for c in scene.cameras}
    assert {(400, 300), (300, 225), (8660, 5774)} <= sizes
    registered = {scene.views[i].name for i in scene.registered()}
    assert names[3] in registered and len(registered) >= len(names) - 1


def test_grey_16_bit_and_exif_rotated_photos_are_all_registered(tmp_path):
    """pycolmap reads raw pixels; photos with an EXIF rotation are matched from upright copies, so
    their keypoints agree with their (upright) cameras."""
    from fields.scene import Scene
    from sfm.io import read_transforms
    from sfm.pose_metrics import compare_poses

    folder = tmp_path / "photos"
    folder.mkdir()
    for k, p in enumerate(sorted((DEMO / "images").glob("*.jpg"))):
        im = Image.open(p)
        if k % 4 == 1:
            im.convert("L").save(folder / p.name, quality=95)
        elif k % 4 == 2:
            Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257).save(folder / (p.stem + ".png"))
        elif k % 4 == 3:  # stored turned a quarter left; the tag says to turn it back to display
            exif = Image.Exif()
            exif[0x0112] = 6
            im.rotate(90, expand=True).save(folder / p.name, quality=95, exif=exif)
        else:
            im.save(folder / p.name, quality=95)
    run = tmp_path / "run"
    assert main(["sfm", str(folder), "-o", str(run), "--no-viewer", "--backend", "colmap"]) == 0
    report = compare_poses(Scene.load(run), read_transforms(DEMO / "transforms.json"))
    assert report.registered == 32 and report.rotation_error_median_deg < 0.5
