"""The readers (sfm/io/) fuzzed with malformed transforms.json and COLMAP files: a FieldsError (one line
for the user), never a traceback, and what parses is usable."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from synthetic import DEMO

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fields.errors import FieldsError  # noqa: E402
from sfm.io import read_transforms  # noqa: E402
from sfm.io.colmap_model import read_colmap  # noqa: E402

FOLDER = Path(tempfile.mkdtemp(prefix="fields_fuzz_"))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def setup_module() -> None:
    from PIL import Image

    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(FOLDER / "a.png")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.just("a.png"),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20)
FRAME = {"file_path": "a.png", "transform_matrix": np.eye(4).tolist(), "fl_x": 10.0, "w": 8, "h": 6}
frame_keys = st.sampled_from(["file_path", "transform_matrix", "fl_x", "fl_y", "cx", "cy", "w", "h", "k1",
                              "camera_angle_x", "mask_path"])


def parses_or_fails_cleanly(text: str) -> None:
    path = FOLDER / "transforms.json"
    path.write_text(text)
    try:
        scene = read_transforms(path)
    except FieldsError as exc:
        assert "\n" not in str(exc)
        return
    for v in scene.views:  # what parses is usable
        assert np.isfinite(v.R).all() and np.isfinite(v.t).all()
        cam = scene.camera_of(scene.views.index(v))
        assert cam.width > 0 and cam.height > 0 and cam.K[0, 0] > 0


@FUZZ
@given(json_values)
def test_any_json_document(doc):
    parses_or_fails_cleanly(json.dumps(doc))


@FUZZ
@given(st.dictionaries(frame_keys, json_values, max_size=4), st.dictionaries(st.sampled_from(
    ["fl_x", "w", "h", "camera_angle_x", "ply_file_path", "frames"]), json_values, max_size=2))
def test_near_valid_frames(frame_changes, top_changes):
    doc = {"frames": [{**FRAME, **frame_changes}], **top_changes}
    parses_or_fails_cleanly(json.dumps(doc))


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_as_transforms_json(data):
    path = FOLDER / "transforms.json"
    path.write_bytes(data)
    try:
        read_transforms(path)
    except FieldsError:
        pass


def model_reads_or_fails_cleanly(suffix: str, cameras: bytes, images: bytes, points: bytes) -> None:
    folder = Path(tempfile.mkdtemp(dir=FOLDER))
    for name, data in (("cameras", cameras), ("images", images), ("points3D", points)):
        (folder / f"{name}{suffix}").write_bytes(data)
    try:
        read_colmap(folder)
    except FieldsError:
        pass


TOKENS = st.sampled_from(["1", "0", "-3", "2", "7", "PINHOLE", "SIMPLE_RADIAL", "OPENCV", "x", "1e308", "nan",
                          "2.5", "#", "a.png", "-1"])
LINES = st.lists(st.lists(TOKENS, max_size=14).map(" ".join), max_size=6).map("\n".join)


@FUZZ
@given(LINES, LINES, LINES)
def test_colmap_text_models(cameras, images, points):
    model_reads_or_fails_cleanly(".txt", cameras.encode(), images.encode(), points.encode())


@FUZZ
@given(st.binary(max_size=96), st.binary(max_size=96), st.binary(max_size=96))
def test_colmap_binary_models(cameras, images, points):
    model_reads_or_fails_cleanly(".bin", cameras, images, points)


def test_a_huge_count_inside_a_binary_model_is_refused_at_once(tmp_path):
    import time

    from sfm.io import write_colmap

    scene = read_transforms(DEMO / "transforms.json")
    write_colmap(scene, tmp_path)
    data = bytearray((tmp_path / "images.bin").read_bytes())
    name_end = data.index(b"\0", 8 + 4 + 32 + 24 + 4)
    data[name_end + 1 : name_end + 9] = (2**40).to_bytes(8, "little")  # the first image's keypoint count
    (tmp_path / "images.bin").write_bytes(bytes(data))
    t0 = time.time()
    with pytest.raises(FieldsError, match="truncated or corrupt"):
        read_colmap(tmp_path)
    assert time.time() - t0 < 5.0
