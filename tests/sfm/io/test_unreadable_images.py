"""The scene readers (sfm/io/) meet unreadable, truncated and oversized images (decompression bombs):
each is skipped with a warning naming it and why, the rest are read; a set with nothing readable is
one FieldsError line; images a transforms.json reads from outside its folder are named in one line."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import DEMO, bad_images

from fields.errors import FieldsError
from sfm.io import read_colmap, read_transforms, write_colmap
from sfm.io.image_folder import NAMED_SKIPS, read_image_folder


def good_images(folder: Path, n: int = 3) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"good_{i}.png" for i in range(n)]
    for name in names:
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(folder / name)
    return names


def messages(record) -> list[str]:
    return [str(w.message) for w in record]


def test_a_folder_skips_each_bad_file_with_a_warning_naming_it_and_reads_the_rest(tmp_path):
    bad = bad_images(tmp_path)
    good = good_images(tmp_path)
    (tmp_path / "notes.txt").write_text("not a photo")
    with pytest.warns(UserWarning) as record:
        scene = read_image_folder(tmp_path)
    assert sorted(v.name for v in scene.views) == good
    lines = messages(record)
    for name, words in bad.items():
        said = [m for m in lines if f"/{name}:" in m]
        assert len(said) == 1 and words in said[0] and "skipped" in said[0], (name, lines)
    assert any("skipped 1 non-image file: notes.txt" in m for m in lines)
    assert all("\n" not in m for m in lines)


def test_a_folder_with_nothing_readable_is_one_error_line(tmp_path):
    bad_images(tmp_path)
    (tmp_path / "notes.txt").write_text("not a photo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error says it all: no warning before it
        with pytest.raises(FieldsError) as err:
            read_image_folder(tmp_path)
    line = str(err.value)
    assert "\n" not in line and "no readable images; 7 unreadable: bad_crc.png (not an image" in line
    assert "notes.txt" in line


def test_many_bad_files_are_named_one_warning_each_up_to_a_limit(tmp_path):
    good_images(tmp_path)
    for i in range(NAMED_SKIPS + 2):
        (tmp_path / f"text_{i:02d}.jpg").write_text("not a photo")
    with pytest.warns(UserWarning) as record:
        read_image_folder(tmp_path)
    lines = messages(record)
    assert len(lines) == NAMED_SKIPS + 1 and "skipped 2 more unreadable images: text_10.jpg, text_11.jpg" in lines[-1]


def write_transforms_json(folder: Path, paths: list[str]) -> Path:
    frames = [{"file_path": p, "transform_matrix": np.eye(4).tolist()} for p in paths]
    (folder / "transforms.json").write_text(json.dumps({"fl_x": 10.0, "frames": frames}))
    return folder / "transforms.json"


def test_transforms_json_skips_a_bomb_and_names_the_files_read_from_outside_its_folder(tmp_path):
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    good = good_images(data / "images")
    bad_images(data / "images")
    outside = good_images(elsewhere, 7)
    (elsewhere / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")  # what a hostile file_path points at
    path = write_transforms_json(data, [f"images/{n}" for n in good] + ["images/bomb.png", str(elsewhere / "passwd")]
                                 + [str(elsewhere / n) for n in outside[:6]] + [f"../elsewhere/{outside[6]}"])
    with pytest.warns(UserWarning) as record:
        scene = read_transforms(path)
    assert len(scene.views) == 3 + 7
    lines = messages(record)
    assert any("bomb.png: it claims 10,000 megapixels" in m and "skipped" in m for m in lines)
    assert any("passwd: not an image" in m for m in lines)
    said = [m for m in lines if "outside" in m]
    assert len(said) == 1 and said[0].startswith(f"{path}: read 8 files from outside {data.resolve()}: ")
    assert str(elsewhere / "passwd") in said[0] and said[0].endswith(" ...")


def test_transforms_json_with_no_readable_image_is_one_error_line(tmp_path):
    bad_images(tmp_path / "images")
    path = write_transforms_json(tmp_path, ["images/bomb.png", "images/text.png", "images/gone.png"])
    with pytest.raises(FieldsError, match=r"no frame has a readable image file \(1 of 3 missing; 2 unreadable: bomb.png"):
        read_transforms(path)


def test_a_colmap_model_unposes_views_whose_image_is_a_bomb(tmp_path):
    scene = read_transforms(DEMO / "transforms.json")
    write_colmap(scene, tmp_path / "sparse" / "0")
    images = tmp_path / "images"
    shutil.copytree(DEMO / "images", images)
    bad_images(tmp_path / "bad")
    shutil.copy(tmp_path / "bad" / "bomb.png", images / "view_004.jpg")
    with pytest.warns(UserWarning, match="view_004.jpg: it claims 10,000 megapixels"):
        model = read_colmap(tmp_path / "sparse" / "0", images)
    unposed = [v.name for v in model.views if not v.registered]
    assert unposed == ["view_004.jpg"] and len(model.registered()) == len(scene.views) - 1
