"""Image quality against a reference: PSNR (from the mean squared error) and SSIM."""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import structural_similarity


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of images in [0, 1] with this mean squared error (capped at 120 dB for a perfect match)."""
    return -10.0 * math.log10(max(mse, 1e-12))


def psnr(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """PSNR in dB of two images in [0, 1]."""
    return psnr_from_mse(float(((torch.as_tensor(pred) - torch.as_tensor(target)) ** 2).mean()))


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """SSIM with the usual 7x7 window, on RGB in [0, 1]."""
    return float(structural_similarity(pred, target, channel_axis=2, data_range=1.0))
