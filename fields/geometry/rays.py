"""Camera rays in the normalised frame and their intersection with the unit sphere or a cube."""

from __future__ import annotations

import numpy as np
import torch

from fields.scene import Camera


def undistort_normalised(xy: np.ndarray, dist: np.ndarray, iters: int = 10) -> np.ndarray:
    """Invert OpenCV's (k1, k2, p1, p2) distortion of normalised image coordinates by fixed-point iteration."""
    if not np.any(dist):
        return xy
    k1, k2, p1, p2 = dist[:4]
    und = xy.copy()
    for _ in range(iters):
        x, y = und[:, 0], und[:, 1]
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        und = np.stack([(xy[:, 0] - dx) / radial, (xy[:, 1] - dy) / radial], axis=1)
    return und


def camera_rays(cam: Camera, R: np.ndarray, t: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World origins and unit directions through continuous pixel coordinates (pixel centres at +0.5)."""
    xy = (pixels - cam.K[:2, 2]) / np.array([cam.K[0, 0], cam.K[1, 1]])
    xy = undistort_normalised(xy, cam.dist)
    d_cam = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
    d = d_cam @ R  # R^T d_cam
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.broadcast_to(-R.T @ t, d.shape).copy(), d


def to_pixels(K: np.ndarray, xc: np.ndarray) -> np.ndarray:
    """Pinhole pixel positions (distortion ignored) of points in camera coordinates (N, 3); a point at
    depth ~0 divides by 1e-12 instead, so the result stays finite (callers check the depth)."""
    z = xc[:, 2]
    return xc[:, :2] / np.where(np.abs(z) < 1e-12, 1e-12, z)[:, None] @ K[:2, :2].T + K[:2, 2]


def project(cam: Camera, R: np.ndarray, t: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera coordinates, pinhole pixel positions (distortion ignored) and whether each point lies
    in front of the camera and inside its image."""
    xc = points @ R.T + t
    front = xc[:, 2] > 1e-6
    uv = to_pixels(cam.K, xc)
    inside = front & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
    return xc, uv, inside


def pixel_grid(width: int, height: int) -> np.ndarray:
    """Centres of every pixel, row by row, (H*W, 2)."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return np.stack([u.ravel(), v.ravel()], axis=1)


def sphere_bounds(o: torch.Tensor, d: torch.Tensor, radius: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Near and far distances of each ray inside the sphere, and whether it meets the sphere at all."""
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - radius**2
    disc = b * b - c
    hit = disc > 0
    root = torch.sqrt(disc.clamp_min(0.0))
    near = (-b - root).clamp_min(0.0)
    far = (-b + root).clamp_min(0.0)
    return near, far, hit & (far > near)


def box_bounds(o: torch.Tensor, d: torch.Tensor, half: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Near and far distances of each ray inside the cube [-half, half]^3 (slab test), and whether it
    meets the cube at all."""
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t1, t2 = (-half - o) * inv, (half - o) * inv
    near = torch.minimum(t1, t2).amax(-1).clamp_min(0.0)
    far = torch.maximum(t1, t2).amin(-1)
    return near, far.clamp_min(0.0), far > near


def sample_pdf(t: torch.Tensor, w: torch.Tensor, n: int, perturb: bool) -> torch.Tensor:
    """n + 1 sorted distances per ray drawn from the piecewise-constant density w (R, K) over the
    intervals between t (R, K + 1): inverse transform of the cumulative weight, one quantile per
    section end, jittered within its stratum when perturb. Rows of w need a positive sum."""
    n_rays = t.shape[0]
    cdf = torch.cat([torch.zeros(n_rays, 1, device=t.device), torch.cumsum(w, 1)], 1)
    cdf = cdf / cdf[:, -1:]
    q = torch.linspace(0.0, 1.0, n + 1, device=t.device)[None].expand(n_rays, -1)
    if perturb:
        q = (q + (torch.rand(n_rays, n + 1, device=t.device) - 0.5) / n).clamp(0.0, 1.0)
        q = torch.sort(q, dim=1).values
    q = q.contiguous()
    i = torch.searchsorted(cdf, q, right=True).clamp(1, w.shape[1])
    c0, c1 = cdf.gather(1, i - 1), cdf.gather(1, i)
    t0, t1 = t.gather(1, i - 1), t.gather(1, i)
    return t0 + (q - c0) / (c1 - c0).clamp_min(1e-12) * (t1 - t0)
