"""The Scene type (fields/scene.py): similarity algebra, look_at, persistence, and the hold-out rule."""

from __future__ import annotations

import numpy as np
from synthetic import random_rotation, scene_from_poses

from fields.scene import Camera, Points, Scene, Similarity, View, look_at


def views_in_a_row(n: int) -> Scene:
    """n registered views (v00.png, v01.png, ...) of one camera, one behind the other along the z axis."""
    cam = Camera.from_focal(40, 30, 35.0, 35.0, 20.0, 15.0)
    return scene_from_poses(cam, [(np.eye(3), np.array([0.0, 0.0, 3.0 + i])) for i in range(n)], name="v{:02d}.png")


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


def test_every_eighth_view_is_held_out_only_without_a_test_split():
    scene = views_in_a_row(20)
    assert scene.hold_out(8) == [0, 8, 16]
    assert scene.held_out_views() == [0, 8, 16]
    assert [v.split for v in scene.views].count("train") == 17
    given = views_in_a_row(5)
    given.views[2].split = "test"
    assert given.hold_out(8) == [2]  # the data's own split wins
