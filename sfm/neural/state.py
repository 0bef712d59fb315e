"""The growing model of the neural SfM: the Reconstruction (poses, cameras, tracks, a 3-D point or
NaN per track, the SDF), the per-view reports, a copy of what a trial registration may change
(ModelState), the snapshot a viewer gets, and the observations of points by registered views with
their reprojection errors."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from fields.neus.sdf_field import SDFField
from fields.scene import Camera
from sfm.frontend.tracks import Correspondences
from sfm.geometry.triangulation import reprojection_error


@dataclass
class ViewReport:
    """What became of one view: registered or not, its observations of points and their mean
    reprojection error (finish_reports), why it is out, how often registration tried it."""

    registered: bool = False
    inliers: int = 0
    error_px: float = float("nan")
    reason: str = ""
    attempts: int = 0
    dropped: int = 0  # times its pose was withdrawn for contradicting its neighbours


@dataclass
class Reconstruction:
    """The growing model: poses by view, a 3-D point (or NaN) per track, the SDF."""

    cameras: list[Camera]  # per view
    tracks: list[np.ndarray]
    track_of: list[np.ndarray]  # per view: track id of each keypoint (-1: none)
    corr: Correspondences
    sdf: SDFField
    poses: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    xyz: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    reports: dict[int, ViewReport] = field(default_factory=dict)

    camera_index: list[int] = field(default_factory=list)  # per view: index into the shared cameras
    # the gauge: a view whose pose bundle adjustment holds, and one whose largest translation coordinate
    # it holds (scale); chosen by gauge_views, never withdrawn
    gauge: tuple[int, int] = (-1, -1)
    bad_pairs: set[tuple[int, int]] = field(default_factory=set)  # verified pairs the poses contradict

    def pair_matches(self, v: int, w: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Keypoint indices (in v, in w) of the verified matches of v and w, None for no pair or a bad one."""
        key = (min(v, w), max(v, w))
        m = self.corr.pairs.get(key)
        if m is None or key in self.bad_pairs:
            return None
        return (m[:, 0], m[:, 1]) if v < w else (m[:, 1], m[:, 0])

    def scale_focal(self, c: int, factor: float) -> None:
        """Multiply the focal length of shared camera c (every view using it) by factor."""
        for v, ci in enumerate(self.camera_index):
            if ci == c:
                cam = self.cameras[v]
                self.cameras[v] = Camera.from_focal(cam.width, cam.height, cam.K[0, 0] * factor, cam.K[1, 1] * factor,
                                                    cam.K[0, 2], cam.K[1, 2])
                self.cameras[v].dist = cam.dist

    def has_point(self) -> np.ndarray:
        """Per track: whether it has a 3-D point."""
        return ~np.isnan(self.xyz[:, 0])


def track_lookup(corr: Correspondences, tracks: list[np.ndarray]) -> list[np.ndarray]:
    """Per view: the track id of each keypoint (-1: in no track)."""
    lookup = [np.full(len(k), -1, np.int64) for k in corr.keypoints]
    for tid, tr in enumerate(tracks):
        for v, k in tr:
            lookup[v][k] = tid
    return lookup


def observations(rec: Reconstruction, views: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(view, track, pixel) rows of the given registered views for tracks that have a point."""
    vs, ts, xs = [], [], []
    has = rec.has_point()
    for v in views:
        tid = rec.track_of[v]
        k = np.flatnonzero((tid >= 0) & has[np.maximum(tid, 0)])
        vs.append(np.full(len(k), v))
        ts.append(tid[k])
        xs.append(rec.corr.keypoints[v][k])
    return np.concatenate(vs), np.concatenate(ts), np.concatenate(xs)


def track_errors(rec: Reconstruction, v: int) -> tuple[np.ndarray, np.ndarray]:
    """The tracks that registered view v observes with a point, and their reprojection errors (px)."""
    _, t, x = observations(rec, [v])
    return t, reprojection_error(rec.cameras[v].K, *rec.poses[v], rec.xyz[t], x) if len(t) else np.zeros(0)


def view_errors(rec: Reconstruction, v: int) -> np.ndarray:
    """Reprojection errors (px) of registered view v's observations of points."""
    return track_errors(rec, v)[1]


def mean_error(rec: Reconstruction) -> float:
    """Mean reprojection error (px) over every observation of a point by a registered view."""
    errors = np.concatenate([np.zeros(0)] + [view_errors(rec, v) for v in rec.poses])
    return float(errors.mean()) if len(errors) else float("nan")


@dataclass
class ModelState:
    """What a trial registration (close_loop) may change in a Reconstruction, to put it back."""

    poses: dict[int, tuple[np.ndarray, np.ndarray]]
    xyz: np.ndarray
    cameras: list[Camera]
    reports: dict[int, ViewReport]
    bad_pairs: set[tuple[int, int]]
    sdf: dict[str, torch.Tensor]

    @staticmethod
    def of(rec: Reconstruction) -> ModelState:
        return ModelState(dict(rec.poses), rec.xyz.copy(), list(rec.cameras),
                          {v: replace(r) for v, r in rec.reports.items()}, set(rec.bad_pairs),
                          {k: t.detach().clone() for k, t in rec.sdf.state_dict().items()})

    def restore(self, rec: Reconstruction) -> None:
        rec.poses, rec.xyz, rec.cameras = dict(self.poses), self.xyz.copy(), list(self.cameras)
        rec.reports, rec.bad_pairs = {v: replace(r) for v, r in self.reports.items()}, set(self.bad_pairs)
        rec.sdf.load_state_dict(self.sdf)


@dataclass
class SfMSnapshot:
    """The model as it stands, for a viewer: copies, so the caller may keep them."""

    # "global start" or "initial pair", "registered VIEW", "global bundle adjustment", "final bundle adjustment"
    stage: str
    poses: dict[int, tuple[np.ndarray, np.ndarray]]  # view -> world-to-camera (R, t)
    cameras: list[Camera]  # per view
    points: np.ndarray  # (N, 3)


def snapshot(rec: Reconstruction, stage: str) -> SfMSnapshot:
    """rec at `stage`, copied for a viewer."""
    return SfMSnapshot(stage, {v: (R.copy(), t.copy()) for v, (R, t) in rec.poses.items()}, list(rec.cameras),
                       rec.xyz[rec.has_point()].copy())
