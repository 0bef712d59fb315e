"""Rendered videos: an orbit around the scene (or given poses) written as MP4 with even sizes."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from fields.neus import NeuSModel
from fields.occupancy_grid import OccupancyGrid
from fields.rays import camera_rays, pixel_grid, sphere_bounds
from fields.scene import Camera, Scene, look_at


def even_camera(cam: Camera, max_size: int) -> Camera:
    """The camera resized so its longer side is about max_size and both sides are even."""
    s = min(1.0, max_size / max(cam.width, cam.height))
    w, h = max(2, int(round(cam.width * s / 2)) * 2), max(2, int(round(cam.height * s / 2)) * 2)
    return cam.resized(w, h)


def orbit_poses(scene: Scene, n_frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Poses (normalised frame) circling the origin at the cameras' median distance and elevation."""
    poses = [scene.normalised_pose(i) for i in scene.registered()]
    centers = np.array([-R.T @ t for R, t in poses])
    up = -np.mean([R[1] for R, _ in poses], axis=0)
    up /= np.linalg.norm(up)
    radius = float(np.median(np.linalg.norm(centers, axis=1)))
    height = float(np.median(centers @ up))
    ref = centers[0] - (centers[0] @ up) * up
    ref = ref / max(np.linalg.norm(ref), 1e-9)
    side = np.cross(up, ref)
    ring = np.sqrt(max(radius**2 - height**2, 1e-6))
    out = []
    for k in range(n_frames):
        a = 2.0 * np.pi * k / n_frames
        c = height * up + ring * (np.cos(a) * ref + np.sin(a) * side)
        out.append(look_at(c, np.zeros(3), up))
    return out


@torch.no_grad()
def render_image(model: NeuSModel, cam: Camera, R: np.ndarray, t: np.ndarray, n_samples: int = 64,
                 chunk: int = 4096, grid: OccupancyGrid | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RGB (H, W, 3) and depth (H, W) of a view in the normalised frame (faster with an occupancy grid)."""
    device = next(model.parameters()).device
    o, d = camera_rays(cam, R, t, pixel_grid(cam.width, cam.height))
    o, d = torch.from_numpy(o).float(), torch.from_numpy(d).float()
    rgb, depth = [], []
    for s in range(0, o.shape[0], chunk):
        oc, dc = o[s : s + chunk].to(device), d[s : s + chunk].to(device)
        near, far, _ = sphere_bounds(oc, dc)
        out = model.render(oc, dc, near, far, n_samples, perturb=False, grid=grid)
        rgb.append(out.rgb.cpu())
        depth.append(out.depth.cpu())
    shape = (cam.height, cam.width)
    return torch.cat(rgb).reshape(*shape, 3).numpy(), torch.cat(depth).reshape(shape).numpy()


def write_video(frames: list[np.ndarray], path: Path, fps: int = 24) -> None:
    """H.264 MP4 (yuv420p) from float RGB frames, written atomically."""
    tmp = Path(path).with_name(Path(path).stem + ".tmp.mp4")
    with imageio.get_writer(tmp, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2) as w:
        for f in frames:
            w.append_data(np.clip(np.round(f * 255.0), 0, 255).astype(np.uint8))
    os.replace(tmp, path)
