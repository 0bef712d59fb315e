"""Fitting a 2-D image with a coordinate network: the library's simplest end-to-end use."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from fields.eval.image_metrics import psnr
from fields.nn.builder import Field


@dataclass
class ImageFit:
    image: np.ndarray  # (H, W, C) reconstruction in [0, 1]
    psnr: float
    seconds: float
    parameters: int
    psnr_at: dict[int, tuple[float, float]]  # step -> (PSNR on every pixel, training seconds so far)


def pixel_coordinates(height: int, width: int) -> torch.Tensor:
    """Pixel centres in [0, 1]^2 as (x, y), row by row."""
    ys, xs = torch.meshgrid((torch.arange(height) + 0.5) / height, (torch.arange(width) + 0.5) / width, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


def train_pixels(height: int, width: int, holdout: bool) -> torch.Tensor:
    """Flat indices of the training pixels: all, or those with even row and column."""
    if not holdout:
        return torch.arange(height * width)
    rows, cols = torch.meshgrid(torch.arange(0, height, 2), torch.arange(0, width, 2), indexing="ij")
    return (rows * width + cols).reshape(-1)


@torch.no_grad()
def render(field: Field, coords: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    return torch.cat([field(coords[s : s + chunk]) for s in range(0, coords.shape[0], chunk)]).clamp(0.0, 1.0)


def fit_image(field: Field, image: np.ndarray, steps: int, lr: float = 1e-3, batch: int | None = None,
              seed: int = 0, report_at: tuple[int, ...] = (), holdout: bool = False) -> ImageFit:
    """Adam on the MSE of random pixel batches (the whole image when batch is None); PSNR on every pixel,
    also after each step count in report_at (evaluation time is not counted as training time).

    holdout=True trains on every other pixel along both axes (a quarter of them) and still measures
    on all: the protocol of Tancik et al. 2020 and CAM, which scores interpolation as well as fitting.
    """
    torch.manual_seed(seed)
    h, w, c = image.shape
    coords = pixel_coordinates(h, w)
    target = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).reshape(-1, c)
    train = train_pixels(h, w, holdout)
    opt = torch.optim.Adam(field.param_groups(lr), betas=(0.9, 0.99), eps=1e-15)
    seconds, psnr_at = 0.0, {}
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        idx = train[torch.randint(0, len(train), (batch,))] if batch else train
        loss = ((field(coords[idx]) - target[idx]) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - t0
        if step in report_at:
            psnr_at[step] = (psnr(render(field, coords), target), seconds)
    out = render(field, coords)
    return ImageFit(out.reshape(h, w, c).numpy(), psnr(out, target), seconds, sum(p.numel() for p in field.parameters()),
                    psnr_at)
