"""Neural bundle adjustment (Level-S2fM): camera poses and the SDF optimised together, with the 3-D
points not free variables but the Newton snaps of their last positions onto the SDF's zero level
set, so moving a point means moving the surface.

Loss: a robust (Huber) reprojection error, counted only for points whose |sdf| is below tau (the
level set manages the points and rejects the rest), an Eikonal term, and a surface term that keeps
the zero level set through the points. The gauge is fixed by holding one pose and one translation
coordinate of another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fields.encodings.hash_grid import backward_to_parameters
from fields.geometry.level_set import newton_snap, snap_step
from fields.neus.regularisers import eikonal_term, uniform_points
from fields.neus.sdf_field import SDFField
from fields.nn.adam import Adam


def so3_exp(w: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) from axis-angle vectors (N, 3) (Rodrigues, smooth at zero)."""
    theta2 = (w * w).sum(-1, keepdim=True)[..., None]
    theta = torch.sqrt(theta2 + 1e-20)
    small = theta2 < 1e-8
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2.clamp_min(1e-20))
    zero = torch.zeros_like(w[:, 0])
    W = torch.stack([torch.stack([zero, -w[:, 2], w[:, 1]], -1), torch.stack([w[:, 2], zero, -w[:, 0]], -1),
                     torch.stack([-w[:, 1], w[:, 0], zero], -1)], -2)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(W)
    return eye + a * W + b * (W @ W)


@dataclass
class BAProblem:
    K: np.ndarray  # (V, 3, 3) intrinsics of the views in the problem (fixed)
    R: np.ndarray  # (V, 3, 3) world-to-camera rotations of the views in the problem
    t: np.ndarray  # (V, 3)
    points: np.ndarray  # (P, 3)
    obs_view: np.ndarray  # (O,) index into the problem's views
    obs_point: np.ndarray  # (O,) index into points
    obs_xy: np.ndarray  # (O, 2) observed pixels
    free: np.ndarray  # (V,) bool: pose optimised
    t_mask: np.ndarray  # (V, 3) 1 where a translation coordinate may move (the gauge zeroes one)
    camera: np.ndarray | None = None  # (V,) camera index of each view, when focal lengths are refined


@dataclass
class BAResult:
    R: np.ndarray
    t: np.ndarray
    points: np.ndarray  # snapped onto the level set
    residual: np.ndarray  # (P,) |sdf| at the points before the final snap
    errors: np.ndarray  # (O,) reprojection errors in pixels
    focal_scale: np.ndarray  # (C,) factor on each camera's focal length (ones when not refined)


def rows(a: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """a[index] along the first dimension, with a backward that repeats to the last bit: indexing's
    backward (index_put_ with accumulation) sums in an order that changes from call to call on two CPU
    threads, and the neural SfM amplifies that into different poses; index_select's does not."""
    return torch.index_select(a, 0, index)


def reprojection(K: torch.Tensor, R: torch.Tensor, t: torch.Tensor, X: torch.Tensor, view: torch.Tensor,
                 xy: torch.Tensor) -> torch.Tensor:
    """Pixel error of each observation (large where the point is behind the camera)."""
    xc = (rows(R, view) @ X[..., None]).squeeze(-1) + rows(t, view)
    z = xc[:, 2:].clamp_min(1e-6)
    Kv = rows(K, view)
    uv = xc[:, :2] / z * torch.stack([Kv[:, 0, 0], Kv[:, 1, 1]], -1) + Kv[:, :2, 2]
    err = (uv - xy).norm(dim=-1)
    return torch.where(xc[:, 2] > 1e-6, err, torch.full_like(err, 1e3))


def huber(err: torch.Tensor, delta: float) -> torch.Tensor:
    return torch.where(err <= delta, 0.5 * err * err, delta * (err - 0.5 * delta))


def bundle_adjust(sdf: SDFField, prob: BAProblem, steps: int, tau: float, huber_px: float = 2.0,
                  lr_pose: float = 1e-3, lr_sdf: float = 1e-3, eikonal_weight: float = 0.1,
                  surface_weight: float = 10.0, seed: int = 0) -> BAResult:
    """Optimise the free poses and the SDF for `steps` Adam steps; returns the refined problem."""
    gen = torch.Generator().manual_seed(seed)
    K = torch.tensor(prob.K, dtype=torch.float32)
    R0 = torch.tensor(prob.R, dtype=torch.float32)
    t0 = torch.tensor(prob.t, dtype=torch.float32)
    P = torch.tensor(prob.points, dtype=torch.float32)
    view = torch.tensor(prob.obs_view, dtype=torch.int64)
    pidx = torch.tensor(prob.obs_point, dtype=torch.int64)
    xy = torch.tensor(prob.obs_xy, dtype=torch.float32)
    free = torch.tensor(prob.free, dtype=torch.float32)[:, None]
    tmask = torch.tensor(prob.t_mask, dtype=torch.float32) * free
    w = torch.zeros(len(R0), 3, requires_grad=True)
    dt = torch.zeros(len(R0), 3, requires_grad=True)
    cam = torch.tensor(prob.camera if prob.camera is not None else np.zeros(len(R0)), dtype=torch.int64)
    log_f = torch.zeros(int(cam.max()) + 1, requires_grad=prob.camera is not None)
    groups = [{"params": [w, dt], "lr": lr_pose}, {"params": sdf.parameters(), "lr": lr_sdf}]
    if prob.camera is not None:
        groups.append({"params": [log_f], "lr": 2 * lr_pose})
    opt = Adam(groups)
    base = [g["lr"] for g in opt.param_groups]
    for step in range(steps):
        for g, lr in zip(opt.param_groups, base):  # decay to 1/20: Adam's steps do not shrink by themselves
            g["lr"] = lr * 0.05 ** (step / max(steps - 1, 1))
        R = so3_exp(w * free) @ R0
        t = t0 + dt * tmask
        # one evaluation serves the snap, surface and Eikonal terms (the Eikonal term's uniform points too)
        f_all, _, g_all = sdf.gradient(torch.cat([P, uniform_points(512, gen, P.device)]), create_graph=True)
        f, g = f_all[: len(P)], g_all[: len(P)]
        X = snap_step(P, f, g)
        near = (f.detach().abs() < tau).float()
        err = reprojection(scaled_focal(K, log_f, cam), R, t, rows(X, pidx), view, xy)
        rep = (huber(err, huber_px) * near[pidx]).sum() / near[pidx].sum().clamp_min(1.0)
        loss = rep + surface_weight * f.abs().mean() + eikonal_weight * eikonal_term(g_all)
        opt.zero_grad(set_to_none=True)
        backward_to_parameters(loss, opt)
        opt.step()
    with torch.no_grad():
        R = so3_exp(w * free) @ R0
        t = t0 + dt * tmask
    X, residual = newton_snap(sdf.sdf, P, steps=1)
    with torch.no_grad():
        err = reprojection(scaled_focal(K, log_f, cam), R, t, rows(X, pidx), view, xy)
    return BAResult(R.double().numpy(), t.double().numpy(), X.double().numpy(), residual.double().numpy(),
                    err.double().numpy(), torch.exp(log_f).detach().double().numpy())


def scaled_focal(K: torch.Tensor, log_f: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Per-view intrinsics with each camera's focal lengths multiplied by exp(log_f)."""
    M = torch.ones(len(K), 3, 3)
    M[:, :2, :2] = rows(torch.exp(log_f), cam)[:, None, None]
    return K * M
