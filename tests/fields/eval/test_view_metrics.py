"""Held-out view metrics (fields/eval/image_metrics.py, views.py) on known cases: PSNR/SSIM identities,
the depth calibration, and the z factor that turns ray depth into camera depth."""

from __future__ import annotations

import numpy as np

from fields.eval.image_metrics import psnr, ssim
from fields.eval.views import (
    calibrated_depth_error,
    z_factor,
)
from fields.scene import Camera


def test_psnr_and_ssim_of_identical_and_offset_images():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (32, 40, 3)).astype(np.float32)
    assert ssim(img, img) > 0.9999
    assert abs(psnr(np.clip(img + 0.1, 0, 1), img) - 20.0) < 1.0  # 0.1 off (less where clipped) ~ 20 dB


def test_depth_calibration_is_exact_for_an_affine_encoding():
    depth = np.random.default_rng(1).uniform(2.0, 6.0, 500)
    values = 1.0 - (depth - 0.5) / 8.0  # an inverted, scaled encoding
    err, rel = calibrated_depth_error(values, depth)
    assert err < 1e-9 and rel < 1e-9
    noisy, _ = calibrated_depth_error(values, depth + 0.1 * np.sign(np.sin(np.arange(500))))
    assert 0.05 < noisy < 0.15


def test_z_factor_is_the_cosine_to_the_optical_axis():
    cam = Camera.from_focal(40, 30, 35.0, 35.0, 20.0, 15.0)
    f = z_factor(cam)
    assert f.shape == (30, 40) and abs(f.max() - 1.0) < 1e-3
    x, y = (0.5 - 20.0) / 35.0, (0.5 - 15.0) / 35.0
    assert abs(f[0, 0] - 1.0 / np.sqrt(1 + x * x + y * y)) < 1e-12
