"""Camera maths between viser and fields: viser's (w, x, y, z) orientations, the browser's camera as a
pinhole with a world-to-camera pose, and a length to size frustums and points by."""

from __future__ import annotations

import math

import numpy as np

from fields.scene import Camera


def rotation_to_wxyz(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix (viser's orientation format)."""
    import viser.transforms as vtf

    return np.asarray(vtf.SO3.from_matrix(R).wxyz, float)


def wxyz_to_rotation(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    import viser.transforms as vtf

    return np.asarray(vtf.SO3(np.asarray(q, float)).as_matrix(), float)


def browser_camera(wxyz: np.ndarray, position: np.ndarray, fov_y: float, aspect: float,
                   long_side: int) -> tuple[Camera, np.ndarray, np.ndarray]:
    """A pinhole camera and world-to-camera (R, t) for the browser's view (viser cameras are OpenCV
    camera-to-world, vertical field of view in radians)."""
    if aspect >= 1.0:
        w, h = long_side, max(2, round(long_side / aspect))
    else:
        w, h = max(2, round(long_side * aspect)), long_side
    f = 0.5 * h / math.tan(0.5 * fov_y)
    c2w = wxyz_to_rotation(wxyz)
    R = c2w.T
    return Camera.from_focal(w, h, f, f, 0.5 * w, 0.5 * h), R, -R @ np.asarray(position, float)


def scene_extent(centres: np.ndarray, points: np.ndarray | None = None) -> float:
    """A length for sizing frustums and points: the median camera distance from their middle."""
    if len(centres) >= 2:
        mid = np.median(centres, axis=0)
        ext = float(np.median(np.linalg.norm(centres - mid, axis=1)))
        if ext > 0:
            return ext
    if points is not None and len(points) >= 2:
        return float(np.linalg.norm(np.percentile(points, 90, axis=0) - np.percentile(points, 10, axis=0))) or 1.0
    return 1.0
