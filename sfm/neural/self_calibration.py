"""Self-calibration for photos without a focal length (no EXIF, no sfm.fov): the focal length the
first solution refined becomes a known prior, the matches are made again with it (keypoints kept) and
the model is solved again.

Why: a guessed focal length (1.2 x the longer side) far from the truth misleads geometric verification
and guided matching, and rotation averaging then settles on a self-consistent wrong solution whose
bundle adjustment nevertheless finds the right focal length (with a guess several times too short,
the first pass can register every view tens of degrees off with a focal length within 1 % of the truth;
the second, from that focal length, is right).
"""

from __future__ import annotations

from dataclasses import replace

from fields.scene import Camera, Scene


def calibrated_inputs(inputs: Scene, result: Scene, min_change: float = 0.3, min_views: int = 3) -> Scene | None:
    """`inputs` with its guessed camera replaced by the result's refined one (known from now on), or None
    when there is nothing to redo: the focal length was known, several cameras (the second pass handles
    one shared camera), fewer than min_views registered views, or a change of at most min_change (a guess
    a quarter off still gives the same poses from the first pass; a second pass would only cost time)."""
    if len(inputs.cameras) != 1 or inputs.cameras[0].focal_known or len(result.registered()) < min_views:
        return None
    guess, refined = inputs.cameras[0], result.cameras[0]
    f_guess, f_refined = 0.5 * (guess.K[0, 0] + guess.K[1, 1]), 0.5 * (refined.K[0, 0] + refined.K[1, 1])
    if not f_refined > 0 or abs(f_refined / f_guess - 1.0) <= min_change:
        return None
    camera = Camera.from_focal(guess.width, guess.height, f_refined, f_refined, guess.K[0, 2], guess.K[1, 2])
    return replace(inputs, cameras=[camera])
