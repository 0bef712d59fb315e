"""Fitting a coordinate network to an image (fields/fit/image.py)."""

from __future__ import annotations

import torch

from fields.fit.image import fit_image, pixel_coordinates
from fields.nn.builder import build_field, resolve_spec


def test_fitting_a_smooth_image_reaches_a_high_psnr():
    h, w = 24, 32
    xy = pixel_coordinates(h, w)
    img = torch.stack([0.5 + 0.4 * torch.sin(3 * xy[:, 0]), xy[:, 1], 0.5 * xy[:, 0] * xy[:, 1]], -1).reshape(h, w, 3)
    f = build_field(resolve_spec("dense"), 2, 3)
    fit = fit_image(f, img.numpy(), steps=300, lr=1e-2)
    assert fit.psnr > 35.0 and fit.image.shape == (h, w, 3)
