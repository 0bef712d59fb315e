"""Epipolar checks of posed views against their matches: the Sampson distance of each match to the
epipolar geometry two poses imply. It needs no 3-D points, so it judges a new registration by every
matched neighbour, including those whose points are not triangulated yet, and finds wrong pairs
(repeated or symmetric structure) that passed two-view verification with a geometry of their own."""

from __future__ import annotations

import numpy as np


def skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def fundamental(K1: np.ndarray, pose1: tuple[np.ndarray, np.ndarray], K2: np.ndarray,
                pose2: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """F with x2^T F x1 = 0 for world-to-camera poses (R, t) and pinhole intrinsics."""
    R = pose2[0] @ pose1[0].T
    t = pose2[1] - R @ pose1[1]
    return np.linalg.inv(K2).T @ skew(t) @ R @ np.linalg.inv(K1)


def sampson_error(F: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """First-order distance in pixels of matches (N, 2) x1 <-> x2 from the epipolar geometry F."""
    h1 = np.c_[x1, np.ones(len(x1))]
    h2 = np.c_[x2, np.ones(len(x2))]
    Fx1, Ftx2 = h1 @ F.T, h2 @ F
    num = np.sum(h2 * Fx1, axis=1) ** 2
    den = Fx1[:, 0] ** 2 + Fx1[:, 1] ** 2 + Ftx2[:, 0] ** 2 + Ftx2[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-300))
