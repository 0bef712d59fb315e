"""Held-out view evaluation: PSNR and SSIM of rendered test views, and depth against ground-truth maps.

Which views: Scene.held_out_views (the test split, else the val split); a scene with neither gets every n-th
registered view held out before training (`Scene.hold_out`), as LLFF and nerfstudio do, so the numbers
are on images the field never saw.

Depth: NeRF-synthetic ships 8-bit depth PNGs (`r_K_depth_0001.png`) whose value is an unknown
affine function of distance. One affine map from PNG value to depth is fitted over all foreground
pixels of all test views together (two numbers for the whole set), and the error is reported after
it: the shape of the depth must match everywhere, only the encoding's scale and offset are free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fields.eval.image_metrics import psnr, ssim
from fields.images import composite, load_image
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.radiance_field import fixed_colour
from fields.neus.render_view import render_image
from fields.neus.rendering import NeuSModel
from fields.scene import Scene


def depth_map_path(image: Path | None) -> Path | None:
    """NeRF-synthetic's ground-truth depth beside an image, if there is one."""
    if image is None:
        return None
    p = image.with_name(f"{image.stem}_depth_0001.png")
    return p if p.is_file() else None


@dataclass
class ViewReport:
    names: list[str] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    depth_abs: float | None = None  # mean |depth error| after the affine calibration, input-frame units
    depth_rel: float | None = None  # the same over the mean ground-truth depth
    depth_pixels: int = 0

    def to_dict(self) -> dict:
        return {"views": len(self.names), "psnr": float(np.mean(self.psnr)) if self.psnr else None,
                "ssim": float(np.mean(self.ssim)) if self.ssim else None, "depth_abs": self.depth_abs,
                "depth_rel": self.depth_rel, "depth_pixels": self.depth_pixels,
                "per_view": [{"name": n, "psnr": p, "ssim": s} for n, p, s in zip(self.names, self.psnr, self.ssim)]}


def calibrated_depth_error(values: np.ndarray, depth: np.ndarray) -> tuple[float, float]:
    """Mean absolute and relative error of depth after the least-squares affine map from values."""
    A = np.stack([values, np.ones_like(values)], 1)
    coef, *_ = np.linalg.lstsq(A, depth, rcond=None)
    err = np.abs(A @ coef - depth)
    return float(err.mean()), float(err.mean() / max(float(np.abs(depth).mean()), 1e-12))


def z_factor(cam) -> np.ndarray:
    """Per-pixel cosine between the ray and the optical axis: distance along the ray times it is z-depth."""
    xs, ys = np.meshgrid(np.arange(cam.width) + 0.5, np.arange(cam.height) + 0.5)
    x, y = (xs - cam.K[0, 2]) / cam.K[0, 0], (ys - cam.K[1, 2]) / cam.K[1, 1]
    return 1.0 / np.sqrt(1.0 + x * x + y * y)


def evaluate_views(model: NeuSModel, scene: Scene, views: list[int], max_size: int, progress=None,
                   n_samples: int = 128, renderer: str = "volume") -> ViewReport:
    """Render each view at the training size and compare it with its image (and depth map, if any).

    renderer: 'traced' or 'volume' (render_view.render_image). 128 samples per ray where the volume
    renderer runs: with 64, a section is long enough that its colour, read at the section's
    middle, comes from beside the surface and the score drops; more than 128 change it little."""
    import torch

    grid = OccupancyGrid.from_sdf(model.sdf.sdf, 64, next(model.parameters()).device)
    scale = scene.to_normalised.scale
    report, vals, deps = ViewReport(), [], []
    for i in (progress(views) if progress else views):
        img, cam = scene.image(i, max_size)
        R, t = scene.normalised_pose(i)
        with torch.no_grad():
            out = render_image(model, cam, R, t, n_samples, grid=grid, method=renderer)
        rgb, depth = out.rgb, out.depth
        target = composite(img, fixed_colour(model.background) or (1.0, 1.0, 1.0))
        report.names.append(scene.views[i].name)
        report.psnr.append(psnr(np.clip(rgb, 0, 1), target))
        report.ssim.append(ssim(np.clip(rgb, 0, 1), target))
        dpath = depth_map_path(scene.views[i].path)
        if dpath is not None:
            gt = load_image(dpath, (cam.width, cam.height))[..., 0]
            fg = (gt > 0.5 / 255) & (img[..., 3] > 0.99 if img.shape[2] == 4 else True)
            vals.append(gt[fg])
            deps.append((depth * z_factor(cam))[fg] / scale)  # z-depth, in the input frame's units
    if vals and sum(len(v) for v in vals) > 10:
        v, d = np.concatenate(vals), np.concatenate(deps)
        report.depth_abs, report.depth_rel = calibrated_depth_error(v, d)
        report.depth_pixels = len(v)
    return report
