"""When the viewer's background thread works, as small pure functions and records (no viser, no torch),
so the rules can be tested on their own:

- render requests: each browser's latest camera replaces the one before it (latest wins), and the
  render it is owed is low resolution while the camera moves and full once it has rested;
- the duty cycle: how long the thread idles after a piece of work, so that renders and meshes take
  at most a share of the wall time while training runs (and none is kept back when nothing trains);
- the live mesh: how many steps apart meshes are taken for the steps actually planned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REST_S = 0.3  # a camera that has not moved for this long is at rest: its view is rendered at full size
MOVING_S = 1.0  # a camera that moved within this long counts as moving for the duty cycle


@dataclass(frozen=True)
class CameraRequest:
    """A browser camera to render, copied when the browser reported it (viser: OpenCV camera-to-world
    orientation (w, x, y, z), position, vertical field of view in radians, width / height)."""

    wxyz: tuple[float, float, float, float]
    position: tuple[float, float, float]
    fov: float
    aspect: float
    time: float  # when it was reported (time.time())


@dataclass(frozen=True)
class RenderJob:
    """A render owed to a browser: its latest camera at full size (`high`) or a low one; `urgent` when
    the person at the browser is waiting for it (a camera or mode not yet shown), not when only the
    weights have moved on (a refresh during training, which may wait behind a due mesh)."""

    request: CameraRequest
    high: bool
    urgent: bool = True


@dataclass
class ClientView:
    """One browser's render state: its latest camera request, and what was last sent to it."""

    request: CameraRequest | None = None
    sent: tuple = ()  # (request, snapshot version, mode, high) of the last image sent

    def ask(self, request: CameraRequest) -> None:
        """A new camera from the browser: it replaces any request not yet rendered (an older one
        reported late is ignored), so the background thread only ever renders the latest camera."""
        if self.request is None or request.time >= self.request.time:
            self.request = request

    def superseded(self, request: CameraRequest) -> bool:
        """True when a newer camera has arrived since `request` was taken (a render of it is stale)."""
        return self.request is not request

    def moving(self, now: float, within: float = MOVING_S) -> bool:
        return self.request is not None and now - self.request.time < within

    def forget(self) -> None:
        """Render the view again (the render mode changed)."""
        self.sent = ()

    def job(self, now: float, version: int, mode: str, rest_s: float = REST_S) -> RenderJob | None:
        """The render this browser is owed, or None when what it shows is up to date: its latest camera,
        low resolution while the camera moves, full once it has rested `rest_s` (a full image of the
        same camera, weights and mode is never replaced by a low one)."""
        req = self.request
        if req is None:
            return None
        high = now - req.time >= rest_s
        if not self.sent:
            return RenderJob(req, high)
        s_req, s_version, s_mode, s_high = self.sent
        shown = s_req is req and s_mode == mode and (s_high or not high)  # this camera and mode, this size
        if shown and s_version == version:
            return None
        return RenderJob(req, high, urgent=not shown)

    def done(self, job: RenderJob, version: int, mode: str) -> None:
        self.sent = (job.request, version, mode, job.high)


def duty_share(training: bool, interactive: bool, duty: float, interactive_duty: float) -> float:
    """The share of the wall time the background work may take: all of it when nothing trains (no
    reason to keep a browser waiting), else `interactive_duty` while someone interacts (a camera
    moves, or waits for its view) and `duty` otherwise."""
    if not training:
        return 1.0
    return float(min(max(interactive_duty if interactive else duty, 1e-3), 1.0))


def idle_until(last_end: float, last_seconds: float, share: float) -> float:
    """When the next piece of work may start: after the last one (ending at `last_end`, `last_seconds`
    long), idle long enough that the work took `share` of the time. The share is the one that holds
    now, so a camera that starts moving after a long full-size render waits by the interactive share,
    not the resting one."""
    return last_end + last_seconds * (1.0 / share - 1.0)


def mesh_interval(mesh_every: int, planned_steps: int | None, meshes_per_run: int) -> int:
    """Steps between live meshes: `mesh_every`, or fewer when training plans fewer steps, so that at
    least `meshes_per_run` meshes follow the field over the run (planned_steps None: not known yet)."""
    every = max(1, int(mesh_every))
    if planned_steps is None or planned_steps <= 0 or meshes_per_run <= 0:
        return every
    return max(1, min(every, math.ceil(planned_steps / meshes_per_run)))


def mesh_due(snap_step: int, mesh_step: int, interval: int, training: bool) -> bool:
    """Whether the live mesh should be extracted from a snapshot of `snap_step`, the last one having
    been taken at `mesh_step` (-1: none yet): while training, every `interval` steps; otherwise once
    for weights not meshed yet (the final weights after training, or a finished run's)."""
    if mesh_step < 0:
        return True
    if training:
        return snap_step - mesh_step >= interval
    return snap_step != mesh_step
