"""Every reader of the files a user hands over, or a run folder holds, given damaged copies of a valid
file (cut short, bytes overwritten, JSON values replaced): it reads them or fails with FieldsError,
never another exception (which the command line would show as a traceback)."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synthetic import DEMO, demo_truth

from fields.errors import FieldsError
from fields.scene import Scene
from sfm.io import read_colmap, read_transforms, write_colmap, write_transforms
from sfm.io.camera_path import read_camera_path, write_camera_path

FUZZ = settings(max_examples=int(os.environ.get("FIELDS_FUZZ_EXAMPLES", "25")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    """A folder of valid files of each kind, from the demo's ground truth (photos referred to in place)."""
    root = tmp_path_factory.mktemp("valid")
    scene = demo_truth()
    scene.views = scene.views[:4]
    scene.save(root / "run")
    write_colmap(scene, root / "colmap")
    write_colmap(scene, root / "colmap_text", text=True)
    write_transforms(scene, root / "transforms.json")
    write_camera_path([(scene.cameras[v.camera], v.R, v.t) for v in scene.views], root / "camera_path.json", 24)
    return root


def damaged_bytes(data: bytes, draw) -> bytes:
    """data cut at a drawn point, or with a drawn run of bytes overwritten."""
    if not data:
        return data
    if draw(st.booleans()):
        return data[: draw(st.integers(0, len(data) - 1))]
    at = draw(st.integers(0, len(data) - 1))
    patch = draw(st.binary(min_size=1, max_size=16))
    return data[:at] + patch + data[at + len(patch):]


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(), st.text(max_size=8),
                        st.lists(st.integers(-3, 3), max_size=4), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def damaged_json(doc, draw):
    """doc with one drawn value somewhere inside replaced by a drawn JSON value (or a key dropped)."""
    if isinstance(doc, dict) and doc:
        key = draw(st.sampled_from(sorted(doc)))
        if draw(st.integers(0, 3)) == 0:
            return {k: v for k, v in doc.items() if k != key}
        return {**doc, key: damaged_json(doc[key], draw)}
    if isinstance(doc, list) and doc:
        i = draw(st.integers(0, len(doc) - 1))
        return doc[:i] + [damaged_json(doc[i], draw)] + doc[i + 1:]
    return draw(JSON_VALUES)


def damage_file(path: Path, draw, as_bytes: bool) -> None:
    """Rewrite a file damaged: its bytes (damaged_bytes), or, for JSON, one value inside (damaged_json)."""
    data = path.read_bytes()
    if as_bytes:
        path.write_bytes(damaged_bytes(data, draw))
    else:
        path.write_text(json.dumps(damaged_json(json.loads(data), draw)))


def only_fields_errors(read) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            read()
        except FieldsError as exc:
            assert "\n" not in str(exc).strip()


def copy_of(valid: Path, name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    if dst.exists():
        shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
    (shutil.copytree if (valid / name).is_dir() else shutil.copy)(valid / name, dst)
    return dst


@FUZZ
@given(data=st.data(), name=st.sampled_from(["cameras.bin", "images.bin", "points3D.bin"]))
def test_colmap_binary_models(valid, tmp_path, data, name):
    model = copy_of(valid, "colmap", tmp_path)
    damage_file(model / name, data.draw, as_bytes=True)
    only_fields_errors(lambda: read_colmap(model, DEMO / "images"))


@FUZZ
@given(data=st.data(), name=st.sampled_from(["cameras.txt", "images.txt", "points3D.txt"]))
def test_colmap_text_models(valid, tmp_path, data, name):
    model = copy_of(valid, "colmap_text", tmp_path)
    damage_file(model / name, data.draw, as_bytes=True)
    only_fields_errors(lambda: read_colmap(model, DEMO / "images"))


@FUZZ
@given(data=st.data(), as_bytes=st.booleans())
def test_transforms_json(valid, tmp_path, data, as_bytes):
    path = copy_of(valid, "transforms.json", tmp_path)
    damage_file(path, data.draw, as_bytes)
    only_fields_errors(lambda: read_transforms(path))


@FUZZ
@given(data=st.data(), as_bytes=st.booleans())
def test_run_folder_scene(valid, tmp_path, data, as_bytes):
    run = copy_of(valid, "run", tmp_path)
    if data.draw(st.booleans()):
        damage_file(run / "points.npz", data.draw, as_bytes=True)
    else:
        damage_file(run / "scene.json", data.draw, as_bytes)
    only_fields_errors(lambda: Scene.load(run))


@FUZZ
@given(data=st.data(), as_bytes=st.booleans())
def test_camera_paths(valid, tmp_path, data, as_bytes):
    path = copy_of(valid, "camera_path.json", tmp_path)
    damage_file(path, data.draw, as_bytes)
    only_fields_errors(lambda: read_camera_path(path))
