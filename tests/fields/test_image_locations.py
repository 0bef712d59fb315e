"""Where a saved scene finds its photos: recorded relative to the run and absolute, with fingerprints,
so a copied or moved run folder finds them again, and a moved or changed photo is detected."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fields.errors import FieldsError
from fields.image_locations import Fingerprint, locate, root_record
from fields.scene import Camera, Scene, View


def photos(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        out.append(folder / f"p{i}.png")
        Image.fromarray(rng.integers(0, 255, (8, 10, 3), dtype=np.uint8)).save(out[-1])
    return out


def saved_scene(project: Path) -> Path:
    """A scene over project/photos saved into project/runs/a; the run folder."""
    paths = photos(project / "photos")
    views = [View(p.name, p, 0, R=np.eye(3), t=np.zeros(3)) for p in paths]
    run = project / "runs" / "a"
    Scene([Camera.from_focal(10, 8, 10.0, 10.0)], views).save(run)
    return run


def test_a_copied_run_finds_its_photos_where_they_were(tmp_path):
    run = saved_scene(tmp_path / "project")
    copy = tmp_path / "elsewhere" / "deeper" / "copy"
    shutil.copytree(run, copy)
    scene = Scene.load(copy)
    assert scene.located.complete and scene.located.root == (tmp_path / "project" / "photos").resolve()
    assert scene.image(0)[0].shape == (8, 10, 3)


def test_a_run_moved_with_its_photos_finds_them_beside_it(tmp_path):
    saved_scene(tmp_path / "project")
    os.rename(tmp_path / "project", tmp_path / "moved")
    scene = Scene.load(tmp_path / "moved" / "runs" / "a")
    assert scene.located.complete and scene.views[2].path == (tmp_path / "moved" / "photos" / "p2.png").resolve()


def test_photos_moved_away_are_reported_and_found_again_with_an_override(tmp_path):
    run = saved_scene(tmp_path / "project")
    os.rename(tmp_path / "project" / "photos", tmp_path / "new_place")
    scene = Scene.load(run)
    problem = scene.located.problem()
    assert "3 photos not found (p0.png, p1.png, p2.png)" in problem and "looked in" in problem
    with pytest.raises(FieldsError, match="--images DIR"):
        scene.require_images()
    again = Scene.load(run, tmp_path / "new_place")
    assert again.located.complete and again.views[0].path == (tmp_path / "new_place" / "p0.png").resolve()
    again.save(run)  # the new place recorded: found without the override from now on
    assert Scene.load(run).located.complete


def test_a_changed_photo_is_detected_by_its_contents(tmp_path):
    run = saved_scene(tmp_path / "project")
    p = tmp_path / "project" / "photos" / "p1.png"
    data = bytearray(p.read_bytes())
    data[-20] ^= 0xFF  # same size, other bytes
    p.write_bytes(bytes(data))
    os.utime(p, ns=(1, 1))
    scene = Scene.load(run)
    assert scene.located.changed == ["p1.png"] and "changed since their poses were found" in scene.located.problem()


def test_a_copy_that_lost_the_times_is_still_recognised(tmp_path):
    run = saved_scene(tmp_path / "project")
    for p in (tmp_path / "project" / "photos").iterdir():
        os.utime(p, ns=(7, 7))
    assert Scene.load(run).located.complete


def test_an_override_that_does_not_hold_the_photos_falls_back_to_the_record(tmp_path):
    run = saved_scene(tmp_path / "project")
    (tmp_path / "wrong").mkdir()
    assert Scene.load(run, tmp_path / "wrong").located.root == (tmp_path / "project" / "photos").resolve()


def test_a_scene_json_of_before_the_record_reads_as_it_was_written(tmp_path):
    run = saved_scene(tmp_path / "project")
    doc = json.loads((run / "scene.json").read_text())
    del doc["images"]
    for d in doc["views"]:
        d["path"] = os.path.relpath(tmp_path / "project" / "photos" / d["path"], run)
        del d["fingerprint"]
    (run / "scene.json").write_text(json.dumps(doc))
    scene = Scene.load(run)
    assert scene.located.complete and scene.views[1].path == (tmp_path / "project" / "photos" / "p1.png").resolve()


def test_fingerprints_and_candidate_order(tmp_path):
    a, b = photos(tmp_path / "a", 1)[0], tmp_path / "b" / "p0.png"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    fp = Fingerprint.of(a)
    assert fp.matches(b) and Fingerprint.from_dict(fp.to_dict()) == fp
    record = root_record(tmp_path / "a", tmp_path / "run")
    assert record["relative"] == "../a"
    found = locate(tmp_path / "run", record, [("p0.png", fp)], override=tmp_path / "b")
    assert found.complete and found.root == (tmp_path / "b").resolve()
