"""Camera paths (sfm/io/camera_path.py, nerfstudio's camera_path.json): a round trip keeps the poses
and the field of view, and a malformed file is one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import look_at_target, posed_cameras

from fields.errors import FieldsError
from fields.scene import Camera
from sfm.io.camera_path import read_camera_path, write_camera_path


def test_camera_path_round_trip_keeps_poses_and_field_of_view(tmp_path):
    cam = Camera.from_focal(320, 240, 300.0, 300.0)
    poses = posed_cameras(cam, look_at_target([(2.0, np.cos(a), np.sin(a)) for a in np.linspace(0, 3, 5)]))
    write_camera_path(poses, tmp_path / "path.json")
    back = read_camera_path(tmp_path / "path.json")
    assert len(back) == 5
    for (c0, R0, t0), (c1, R1, t1) in zip(poses, back):
        assert (c1.width, c1.height) == (320, 240) and np.allclose(c1.K, c0.K)
        assert np.allclose(R1, R0) and np.allclose(t1, t0)


def test_malformed_camera_paths_are_one_clear_error(tmp_path):
    key = {"camera_to_world": np.eye(4).reshape(-1).tolist(), "fov": 50}
    bad = [{}, {"render_width": 64, "render_height": 48, "camera_path": []},
           {"render_width": 64, "render_height": 48, "camera_path": [{**key, "fov": 0}]},
           {"render_width": 64, "render_height": 48, "camera_path": [{"camera_to_world": [1, 2], "fov": 50}]},
           {"render_width": 64, "render_height": 48, "camera_type": "equirectangular", "camera_path": [key]}]
    for k, doc in enumerate(bad):
        (tmp_path / f"{k}.json").write_text(json.dumps(doc))
        with pytest.raises(FieldsError):
            read_camera_path(tmp_path / f"{k}.json")
    (tmp_path / "ok.json").write_text(json.dumps({"render_width": 64, "render_height": 48, "camera_path": [key]}))
    assert len(read_camera_path(tmp_path / "ok.json")) == 1
