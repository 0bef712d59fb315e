"""The similarity from the input frame to the normalised frame: the scene's object inside the unit sphere."""

from __future__ import annotations

import numpy as np

from fields.scene import Scene, Similarity


def optical_axes_focus(scene: Scene) -> np.ndarray | None:
    """The point closest (least squares) to every registered camera's optical axis, if it lies in front of them."""
    idx = scene.registered()
    if len(idx) < 2:
        return None
    A, b = np.zeros((3, 3)), np.zeros(3)
    for i in idx:
        v = scene.views[i]
        d = v.R[2]  # optical axis in the world
        P = np.eye(3) - np.outer(d, d)
        A += P
        b += P @ v.center
    if np.linalg.cond(A) > 1e6:
        return None
    p = np.linalg.solve(A, b)
    in_front = np.mean([scene.views[i].R[2] @ (p - scene.views[i].center) > 0 for i in idx])
    return p if in_front > 0.9 else None


def fit_unit_sphere(scene: Scene, target_radius: float = 0.9, percentile: float = 90.0) -> Similarity:
    """Centre on the cameras' focus (else the points' median) and scale the bulk of the points into the sphere.

    Orientation is kept; the radius is the given percentile of point distances (cameras' spread when
    there are no points), capped below the nearest camera so cameras stay outside the sphere.
    """
    centers = scene.centers()
    pts = scene.points.xyz
    c = optical_axes_focus(scene)
    if c is None:
        c = np.median(pts, axis=0) if len(pts) else centers.mean(axis=0)
    cam_dist = np.linalg.norm(centers - c, axis=1) if len(centers) else np.array([1.0])
    r = np.percentile(np.linalg.norm(pts - c, axis=1), percentile) if len(pts) >= 10 else 0.5 * cam_dist.mean()
    if cam_dist.min() > 0:
        r = min(r, 0.9 * target_radius * cam_dist.min())  # cameras at >= 1.1 in the normalised frame
    scale = target_radius / max(r, 1e-12)
    return Similarity(scale, np.eye(3), -scale * c)
