"""The observation floor (sfm/observation_floor.py) on a synthetic ring: exact keypoints give a zero
floor, noisy ones a positive floor that does not depend on the model's own poses, and a track with
a wrong keypoint is left out."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from test_epipolar import ring

from fields.scene import Camera, Points, Scene, View
from sfm.geometry.triangulation import triangulate_track
from sfm.neural.classical_polish import one_focal_camera, polish
from sfm.observation_floor import floor_model, noise_floor, observation_floor


def scenes(noise_px: float, pose_error_deg: float, seed: int = 0) -> tuple[Scene, Scene]:
    """(model, reference): the model has the ring's keypoints (plus noise) and tracks, its poses
    rotated by pose_error_deg from the reference's."""
    cam, poses, kps, X = ring(8, 300, seed=0)
    rng = np.random.default_rng(seed)
    ref = Scene([cam], [View(f"v{k}", None, 0, R, t) for k, (R, t) in enumerate(poses)])
    wrong = [(Rotation.from_rotvec(np.radians(pose_error_deg) * rng.normal(size=3) / np.sqrt(3)).as_matrix() @ R, t)
             for R, t in poses]
    noisy = [k + rng.normal(0.0, noise_px, k.shape) for k in kps]
    tracks = [np.stack([np.arange(len(poses)), np.full(len(poses), p)], 1) for p in range(len(X))]
    model = Scene([cam], [View(f"v{k}", None, 0, R, t, keypoints=noisy[k]) for k, (R, t) in enumerate(wrong)],
                  Points(X + 0.01, np.zeros((len(X), 3), np.uint8), tracks))
    return model, ref


def test_triangulate_track_recovers_a_point_seen_exactly():
    cam, poses, kps, X = ring(5, 10)
    P = [cam.K @ np.c_[R, t] for R, t in poses]
    got = triangulate_track(P, np.stack([k[3] for k in kps]))
    assert np.allclose(got, X[3], atol=1e-9)


def test_exact_keypoints_give_a_zero_floor_whatever_the_model_poses():
    model, ref = scenes(noise_px=0.0, pose_error_deg=5.0)
    rep = observation_floor(model, ref)
    assert rep.registered == 8
    assert rep.rotation_error_median_deg < 1e-5
    assert rep.center_error_median < 1e-6


def test_noisy_keypoints_give_a_positive_floor_independent_of_the_model_poses():
    a = observation_floor(*scenes(noise_px=0.5, pose_error_deg=0.0))
    b = observation_floor(*scenes(noise_px=0.5, pose_error_deg=10.0))
    assert 1e-3 < a.rotation_error_median_deg < 0.2
    assert abs(a.rotation_error_median_deg - b.rotation_error_median_deg) < 1e-6
    more = observation_floor(*scenes(noise_px=1.5, pose_error_deg=0.0))
    assert more.rotation_error_median_deg > 2 * a.rotation_error_median_deg


def test_a_track_with_a_wrong_keypoint_is_left_out():
    model, ref = scenes(noise_px=0.0, pose_error_deg=0.0)
    model.views[2].keypoints[7] += 40.0
    kept = floor_model(model, ref)
    assert len(kept.points) == 299
    assert not any(int(t[0, 1]) == 7 for t in kept.points.tracks)


def test_the_polish_refines_one_focal_length_for_square_pixels():
    """On a ring of views at one elevation, fx and fy refined apart drifted (346 -> 229 px for fy);
    with one focal length it stays within a few percent of the truth."""
    model = floor_model(*scenes(noise_px=0.5, pose_error_deg=0.0))
    cams, _, _ = polish(model.cameras, {k: (v.R, v.t) for k, v in enumerate(model.views)}, [0] * 8,
                        [v.keypoints for v in model.views], model.points.xyz, model.points.tracks, True)
    K = cams[0].K
    assert K[0, 0] == K[1, 1]
    assert abs(K[0, 0] / model.cameras[0].K[0, 0] - 1.0) < 0.05


def test_one_focal_camera_keeps_radial_distortion_and_declines_what_it_cannot_hold():
    cam = Camera.from_focal(400, 300, 350.0, 350.0, 201.0, 149.0)
    assert one_focal_camera(cam, 1).model.name == "SIMPLE_PINHOLE"
    cam.dist = np.array([0.05, -0.01, 0.0, 0.0])
    radial = one_focal_camera(cam, 2)
    assert radial.model.name == "RADIAL" and np.allclose(radial.params, [350.0, 201.0, 149.0, 0.05, -0.01])
    cam.dist = np.array([0.05, 0.0, 0.001, 0.0])
    assert one_focal_camera(cam, 3) is None
    assert one_focal_camera(Camera.from_focal(400, 300, 350.0, 351.0, 200.0, 150.0), 4) is None


def test_the_noise_floor_matches_the_observation_floor_when_the_errors_are_independent_noise():
    model, ref = scenes(noise_px=0.5, pose_error_deg=2.0)
    floor = observation_floor(model, ref)
    floors = noise_floor(model, ref)
    noise, sigma = floors.noise, floors.sigma
    assert floors.observation == floor
    assert abs(sigma / 0.5 - 1.0) < 0.2
    assert 0.5 < noise.rotation_error_median_deg / floor.rotation_error_median_deg < 2.0


def test_a_reference_that_disagrees_with_the_images_raises_the_observation_floor_not_the_noise_floor():
    """Keypoints exact for poses 0.3 deg away from the reference's: the observations agree with each
    other (no noise to average) and the whole floor is the reference's own error."""
    model, ref = scenes(noise_px=0.0, pose_error_deg=0.3)
    wrong_ref = Scene(ref.cameras, [View(v.name, None, 0, v.R, v.t) for v in model.views])
    floor = observation_floor(model, wrong_ref)
    floors = noise_floor(model, wrong_ref)
    noise, sigma = floors.noise, floors.sigma
    assert floor.rotation_error_median_deg > 0.1
    assert sigma < 0.05
    assert noise.rotation_error_median_deg < 0.1 * floor.rotation_error_median_deg
