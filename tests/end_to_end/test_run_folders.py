"""A run folder copied or moved elsewhere: train, export, eval and view go on; photos that moved are
named in one line, and `--images DIR` points the run at them; a tampered checkpoint and a viewer
address that cannot be used are one line each."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from synthetic import DEMO

from apps.cli import main
from fields.scene import Scene

TRAIN = ["--no-viewer", "--set", "train.max_image_size=32", "--set", "train.rays_per_batch=64",
         "--set", "train.hash_log2_size=12", "--set", "train.occupancy_every=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """project/data (the demo's photos and poses) and project/runs/a, trained for 2 steps."""
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(DEMO, project / "data", ignore=shutil.ignore_patterns("surface*"))
    run = project / "runs" / "a"
    assert main(["train", str(project / "data" / "transforms.json"), "-o", str(run), "--set", "train.steps=2",
                 *TRAIN]) == 0
    return project


def errors(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.strip().splitlines() if line.startswith("error:")]


def test_a_copied_run_trains_exports_and_evaluates_where_it_now_is(trained, tmp_path, capsys):
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(trained / "runs" / "a", copy)
    assert main(["train", str(copy), "-o", str(copy), "--set", "train.steps=4", *TRAIN]) == 0
    assert main(["export", "mesh", str(copy), "--resolution", "32", "--keep-unseen"]) == 0
    assert main(["eval", "views", str(copy), "--every", "4", "--size", "16"]) == 0
    assert (copy / "mesh.ply").is_file() and (copy / "view_metrics.json").is_file()
    assert main(["view", str(copy), "--seconds", "0.1", "--port", "7311", "--host", "127.0.0.1"]) == 0
    assert "photos not found" not in capsys.readouterr().err


def test_photos_moved_away_are_one_line_and_images_points_the_run_at_them(trained, tmp_path, capsys):
    project = tmp_path / "p"
    shutil.copytree(trained, project)
    run = project / "runs" / "a"
    (project / "data").rename(tmp_path / "moved_data")
    # the recorded absolute path still leads to the fixture's photos: hide it by a scene of its own
    before = (run / "config.yaml").read_text()
    scene_json = (run / "scene.json").read_text()
    (run / "scene.json").write_text(scene_json.replace(str((trained / "data").resolve()), str(tmp_path / "gone")))
    assert main(["train", str(run), "-o", str(run), "--set", "train.steps=4", *TRAIN]) == 2
    [line] = errors(capsys)
    assert "32 photos not found" in line and "--images DIR" in line
    assert (run / "config.yaml").read_text() == before  # nothing written
    assert main(["eval", "views", str(run)]) == 2 and "--images DIR" in errors(capsys)[0]
    assert main(["view", str(run), "--seconds", "0.1", "--port", "7312", "--host", "127.0.0.1"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "photos not found" in line]
    assert len(warned) == 1 and "shown without them" in warned[0]
    images = tmp_path / "moved_data" / "images"
    assert main(["train", str(run), "-o", str(run), "--images", str(images), "--set", "train.steps=4", *TRAIN]) == 0
    scene = Scene.load(run)  # the new place is recorded
    assert scene.located.complete and scene.located.root == images.resolve()


class Payload:
    """What a malicious pickle would run on loading (torch.load with weights_only refuses to build it)."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_tampered_or_truncated_checkpoint_is_one_line(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(trained / "runs" / "a", copy)
    ckpt = copy / "checkpoints" / "field.pt"
    good = ckpt.read_bytes()
    torch.save({"model": Payload(), "step": 2, "config": {}}, ckpt)
    assert main(["export", "mesh", str(copy), "--resolution", "16"]) == 2
    assert "cannot load checkpoint" in errors(capsys)[0] and not (tmp_path / "pwned").exists()
    assert main(["train", str(copy), "-o", str(copy), "--set", "train.steps=4", *TRAIN]) == 2
    assert "cannot load checkpoint" in errors(capsys)[0] and not (tmp_path / "pwned").exists()
    ckpt.write_bytes(good[: len(good) // 2])
    assert main(["export", "video", str(copy), "--frames", "2", "--size", "16"]) == 2
    assert "cannot load checkpoint" in errors(capsys)[0]
    torch.save({"weights": torch.zeros(2)}, ckpt)  # loadable, but not a checkpoint of ours
    assert main(["eval", "views", str(copy)]) == 2
    assert "not a fields checkpoint" in errors(capsys)[0]


def test_a_viewer_address_it_cannot_listen_on_is_one_line(trained, capsys):
    run = trained / "runs" / "a"
    assert main(["view", str(run), "--host", "999.1.1.1", "--seconds", "0.1"]) == 2
    assert "cannot listen on '999.1.1.1'" in errors(capsys)[0]
