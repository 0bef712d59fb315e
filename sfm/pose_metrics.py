"""Pose accuracy against a reference: Sim(3) alignment of centres (Umeyama, robust), absolute and
relative errors.

Scene scale is the RMS distance of the reference camera centres from their centroid; centre errors
are fractions of it. The alignment is fitted to the views that agree with it (RANSAC over three
views, then least squares on the views within 5 % of the scale), as COLMAP's model_aligner does
with robust alignment: a few misplaced views do not turn every other view's error into theirs
(by plain least squares two views 15-19 degrees off can triple the median error of the rest); they
still count with their own errors. Relative-pose errors (max of rotation and
translation-direction angle) cover every pair of reference views; a pair with an unregistered view
counts as an infinite error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from math import comb

import numpy as np

from fields.errors import FieldsError
from fields.scene import Scene, Similarity
from sfm.report import name_list

ALIGN_TOLERANCE = 0.05  # centre error (fraction of the scene scale) within which a view supports the alignment


def umeyama(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares similarity with dst ~ s R src + t (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    var_s = (xs**2).sum() / len(src)
    s = float(np.trace(np.diag(D) @ S) / var_s) if var_s > 0 else 1.0
    return Similarity(s, R, mu_d - s * R @ mu_s)


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Angle of rotation matrices (..., 3, 3) in degrees (atan2 form: exact near zero)."""
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    axis = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    return np.degrees(np.arctan2(0.5 * np.linalg.norm(axis, axis=-1), cos))


def angle_between_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), (a * b).sum(-1)))


def pose_auc(errors: np.ndarray, thresholds: tuple[float, ...] = (5.0, 10.0, 20.0)) -> list[float]:
    """Area under the recall-vs-error curve up to each threshold, normalised to [0, 1].

    The curve is piecewise linear through (0, 0) and (e_k, k / n), as in SuperGlue and its successors.
    """
    errors = np.sort(np.asarray(errors, float))
    recall = np.arange(1, len(errors) + 1) / len(errors)
    errors = np.concatenate([[0.0], errors])
    recall = np.concatenate([[0.0], recall])
    aucs = []
    for th in thresholds:
        last = np.searchsorted(errors, th)
        e = np.concatenate([errors[:last], [th]])
        r = np.concatenate([recall[:last], [recall[last - 1]]])
        aucs.append(float(np.trapezoid(r, x=e) / th))
    return aucs


def robust_alignment(src: np.ndarray, dst: np.ndarray, tolerance: float, trials: int = 500,
                     seed: int = 0) -> tuple[Similarity, np.ndarray]:
    """Similarity dst ~ s R src + t fitted to the points it maps within `tolerance` of their target
    (RANSAC on triples, the best refitted on its inliers until they stop changing), and those inliers.
    With every point an inlier this is umeyama(src, dst)."""
    n = len(src)
    rng = np.random.default_rng(seed)
    triples = (np.array(list(combinations(range(n), 3))) if comb(n, 3) <= trials
               else np.array([rng.choice(n, 3, replace=False) for _ in range(trials)]))
    best = np.ones(n, bool)
    best_count = -1
    for tri in triples:
        inl = np.linalg.norm(umeyama(src[tri], dst[tri]).apply(src) - dst, axis=1) < tolerance
        if inl.sum() > best_count:
            best, best_count = inl, int(inl.sum())
    if best_count < 3:
        return umeyama(src, dst), np.ones(n, bool)
    for _ in range(10):
        sim = umeyama(src[best], dst[best])
        inl = np.linalg.norm(sim.apply(src) - dst, axis=1) < tolerance
        if inl.sum() < 3 or np.array_equal(inl, best):
            break
        best = inl
    return sim, best


@dataclass
class PoseReport:
    registered: int
    total: int
    rotation_error_median_deg: float
    rotation_error_mean_deg: float
    center_error_median: float
    center_error_mean: float
    auc5: float
    auc10: float
    auc20: float
    aligned: int = 0  # views the alignment was fitted to

    def to_dict(self) -> dict:
        return asdict(self)


def relative_errors(R: list, t: list, R_ref: list, t_ref: list) -> np.ndarray:
    """Per pair (i < j): max(relative-rotation error, translation-direction error); inf if unregistered."""
    n = len(R_ref)
    errs = []
    for i in range(n):
        for j in range(i + 1, n):
            if R[i] is None or R[j] is None:
                errs.append(np.inf)
                continue
            Rij, Rij_ref = R[j] @ R[i].T, R_ref[j] @ R_ref[i].T
            tij, tij_ref = t[j] - Rij @ t[i], t_ref[j] - Rij_ref @ t_ref[i]
            errs.append(max(rotation_angle_deg(Rij @ Rij_ref.T), angle_between_deg(tij, tij_ref)))
    return np.array(errs, float)


def compare_poses(pred: Scene, ref: Scene) -> PoseReport:
    """Errors of pred's poses against ref's, matching views by file name."""
    ref_idx = ref.registered()
    by_name = {v.name: i for i, v in enumerate(pred.views) if v.registered}
    by_stem = {_stem(v.name): i for i, v in enumerate(pred.views) if v.registered}
    matched = [(r, by_name.get(ref.views[r].name, by_stem.get(_stem(ref.views[r].name)))) for r in ref_idx]
    both = [(r, p) for r, p in matched if p is not None]
    if len({p for _, p in both}) < len(both):
        twice = sorted({pred.views[p].name for _, p in both if sum(q == p for _, q in both) > 1})
        raise FieldsError(f"{name_list(twice)} each match several reference views of the same name (one per "
                          "split?); give the reference for one split, e.g. its transforms_train.json")
    if len(both) < 3:
        raise FieldsError(f"only {len(both)} views are registered in both scenes; need 3 to align")
    c_ref = np.array([ref.views[r].center for r, _ in both])
    c_pred = np.array([pred.views[p].center for _, p in both])
    scale = float(np.sqrt(((c_ref - c_ref.mean(0)) ** 2).sum(1).mean()))
    sim, inliers = robust_alignment(c_pred, c_ref, ALIGN_TOLERANCE * scale)
    rot_err = np.array([rotation_angle_deg(pred.views[p].R @ sim.R.T @ ref.views[r].R.T) for r, p in both])
    cen_err = np.linalg.norm(sim.apply(c_pred) - c_ref, axis=1) / max(scale, 1e-15)
    R = [pred.views[p].R if p is not None else None for _, p in matched]
    t = [pred.views[p].t if p is not None else None for _, p in matched]
    rel = relative_errors(R, t, [ref.views[r].R for r in ref_idx], [ref.views[r].t for r in ref_idx])
    a5, a10, a20 = pose_auc(rel)
    return PoseReport(len(both), len(ref_idx), float(np.median(rot_err)), float(rot_err.mean()),
                      float(np.median(cen_err)), float(cen_err.mean()), a5, a10, a20, int(inliers.sum()))


def _stem(name: str) -> str:
    return name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
