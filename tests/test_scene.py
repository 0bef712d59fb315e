"""The Scene type: image loading, similarity algebra, persistence."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fields.errors import FieldsError
from fields.images import image_size, load_image
from fields.scene import Camera, Points, Scene, Similarity, View, look_at


def random_rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_similarity_inverse_and_pose_transform_keep_projections():
    rng = np.random.default_rng(0)
    sim = Similarity(2.5, random_rotation(rng), rng.normal(size=3))
    X = rng.normal(size=(10, 3))
    assert np.allclose(sim.inverse().apply(sim.apply(X)), X)
    R, t = random_rotation(rng), rng.normal(size=3) + [0, 0, 10]
    Rn, tn = sim.transform_pose(R, t)
    cam_a = X @ R.T + t
    cam_b = sim.apply(X) @ Rn.T + tn
    assert np.allclose(cam_a * sim.scale, cam_b)  # same camera-frame points, metric scaled


def test_look_at_points_the_optical_axis_at_the_target():
    R, t = look_at(np.array([3.0, 1.0, 2.0]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    assert np.allclose(R @ R.T, np.eye(3))
    assert np.allclose(R @ np.zeros(3) + t, [0, 0, np.linalg.norm([3, 1, 2])])
    assert R[1] @ [0, 0, 1] < 0  # image +Y (down) points away from world up


def test_exif_orientation_grey_rgba_and_16_bit(tmp_path):
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert image_size(tmp_path / "rot.jpg") == (20, 40)
    assert load_image(tmp_path / "rot.jpg").shape == (40, 20, 3)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").shape == (8, 8, 3)
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "rgba.png")
    assert load_image(tmp_path / "rgba.png").shape == (8, 8, 4)
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png").max() == pytest.approx(1.0)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(FieldsError):
        load_image(tmp_path / "bad.png")


def test_scene_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    cams = [Camera.from_fov(64, 48, 1.0), Camera.from_focal(32, 32, 40.0, 41.0, 15.0, 16.0)]
    cams[1].dist[:] = [0.01, -0.002, 0.0, 0.001]
    views = [View("a.png", tmp_path / "a.png", 0, random_rotation(rng), rng.normal(size=3)),
             View("b.png", tmp_path / "b.png", 1, split="test")]
    views[0].keypoints = rng.normal(size=(5, 2))
    pts = Points(rng.normal(size=(5, 3)), rng.integers(0, 255, (5, 3)).astype(np.uint8),
                 [np.array([[0, k]]) for k in range(5)])
    scene = Scene(cams, views, pts, Similarity(0.5, random_rotation(rng), rng.normal(size=3)))
    scene.save(tmp_path / "s")
    back = Scene.load(tmp_path / "s")
    assert back.registered() == [0] and back.views[1].split == "test"
    assert np.allclose(back.views[0].R, views[0].R) and np.allclose(back.views[0].keypoints, views[0].keypoints)
    assert np.allclose(back.cameras[1].dist, cams[1].dist)
    assert np.allclose(back.points.xyz, pts.xyz) and all(np.array_equal(a, b) for a, b in zip(back.points.tracks, pts.tracks))
    assert np.allclose(back.to_normalised.matrix(), scene.to_normalised.matrix())
    assert back.views[0].path == (tmp_path / "a.png").resolve()


def test_camera_path_round_trip_keeps_poses_and_field_of_view(tmp_path):
    from sfm.io.camera_path import read_camera_path, write_camera_path

    cam = Camera.from_focal(320, 240, 300.0, 300.0)
    poses = [(cam, *look_at(np.array([2.0, np.cos(a), np.sin(a)]), np.zeros(3), np.array([0.0, 0.0, 1.0])))
             for a in np.linspace(0, 3, 5)]
    write_camera_path(poses, tmp_path / "path.json")
    back = read_camera_path(tmp_path / "path.json")
    assert len(back) == 5
    for (c0, R0, t0), (c1, R1, t1) in zip(poses, back):
        assert (c1.width, c1.height) == (320, 240) and np.allclose(c1.K, c0.K)
        assert np.allclose(R1, R0) and np.allclose(t1, t0)


def test_malformed_camera_paths_are_one_clear_error(tmp_path):
    import json

    from sfm.io.camera_path import read_camera_path

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
