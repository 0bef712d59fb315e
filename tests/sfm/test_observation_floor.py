"""The observation floor (sfm/observation_floor.py) on a synthetic ring: exact keypoints give a zero
floor, noisy ones a positive floor that does not depend on the model's own poses, and a track with
a wrong keypoint is left out; the noise floor tells noise in the keypoints from a reference that
disagrees with the images."""

from __future__ import annotations

from synthetic import ring_scenes, scene_from_poses

from sfm.observation_floor import floor_model, noise_floor, observation_floor


def test_exact_keypoints_give_a_zero_floor_whatever_the_model_poses():
    model, ref = ring_scenes(noise_px=0.0, pose_error_deg=5.0)
    rep = observation_floor(model, ref)
    assert rep.registered == 8
    assert rep.rotation_error_median_deg < 1e-5
    assert rep.center_error_median < 1e-6


def test_noisy_keypoints_give_a_positive_floor_independent_of_the_model_poses():
    a = observation_floor(*ring_scenes(noise_px=0.5, pose_error_deg=0.0))
    b = observation_floor(*ring_scenes(noise_px=0.5, pose_error_deg=10.0))
    assert 1e-3 < a.rotation_error_median_deg < 0.2
    assert abs(a.rotation_error_median_deg - b.rotation_error_median_deg) < 1e-6
    more = observation_floor(*ring_scenes(noise_px=1.5, pose_error_deg=0.0))
    assert more.rotation_error_median_deg > 2 * a.rotation_error_median_deg


def test_a_track_with_a_wrong_keypoint_is_left_out():
    model, ref = ring_scenes(noise_px=0.0, pose_error_deg=0.0)
    model.views[2].keypoints[7] += 40.0
    kept = floor_model(model, ref)
    assert len(kept.points) == 299
    assert not any(int(t[0, 1]) == 7 for t in kept.points.tracks)


def test_the_noise_floor_matches_the_observation_floor_when_the_errors_are_independent_noise():
    model, ref = ring_scenes(noise_px=0.5, pose_error_deg=2.0)
    floor = observation_floor(model, ref)
    floors = noise_floor(model, ref)
    noise, sigma = floors.noise, floors.sigma
    assert floors.observation == floor
    assert abs(sigma / 0.5 - 1.0) < 0.2
    assert 0.5 < noise.rotation_error_median_deg / floor.rotation_error_median_deg < 2.0


def test_a_reference_that_disagrees_with_the_images_raises_the_observation_floor_not_the_noise_floor():
    """Keypoints exact for poses 0.3 deg away from the reference's: the observations agree with each
    other (no noise to average) and the whole floor is the reference's own error."""
    model, ref = ring_scenes(noise_px=0.0, pose_error_deg=0.3)
    wrong_ref = scene_from_poses(ref.cameras[0], [(v.R, v.t) for v in model.views])
    floor = observation_floor(model, wrong_ref)
    floors = noise_floor(model, wrong_ref)
    noise, sigma = floors.noise, floors.sigma
    assert floor.rotation_error_median_deg > 0.1
    assert sigma < 0.05
    assert noise.rotation_error_median_deg < 0.1 * floor.rotation_error_median_deg
