"""The viewer's background work: renders of the field from each browser's camera, the live mesh and
"save mesh now", all from the viewer's own copy of the weights.

The training thread copies the weights into a _Snapshot between optimiser steps, so renders never see
half-updated weights. One background thread does the heavy work. Renders someone waits for come
first: each browser's latest camera (older ones are dropped, schedule.ClientView), small while it
moves and full size once it rests, the full one in bands of rows so that a camera that moves again
is served after one band, not after the whole image. While training runs, the thread idles after each piece of work to keep to
a share of the wall time (`duty`, or `interactive_duty` while a camera moves), which bounds how much
it can slow training; with nothing training it does not idle. The field lives in the normalised
frame, so browser cameras are mapped into it for rendering and meshes are mapped back to the input
frame.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from apps.viewer.camera import browser_camera
from apps.viewer.schedule import ClientView, RenderJob, duty_share, idle_until, mesh_due
from fields.errors import FieldsError
from fields.export.mesh import export_mesh, extract_mesh
from fields.export.video import depth_frames, normal_frame
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.render_view import ViewRender, render_image
from fields.neus.rendering import NeuSModel
from fields.scene import Camera

log = logging.getLogger("fields")

BAND_RAYS = 16384  # rays per band of a full-size render: a newer camera waits at most one band


def colourise(render, mode: str, R: np.ndarray) -> np.ndarray:
    """The render as an 8-bit RGB image in the chosen mode."""
    if mode == "Depth":
        img = depth_frames([render])[0]
    elif mode == "Normals":
        img = normal_frame(render, R)
    else:
        img = render.rgb
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def band_rows(width: int, height: int, rays: int = BAND_RAYS) -> list[tuple[int, int]]:
    """Row ranges [y0, y1) that split an image into bands of about `rays` pixels each."""
    rows = max(1, rays // max(width, 1))
    return [(y0, min(y0 + rows, height)) for y0 in range(0, height, rows)]


def render_in_bands(model: NeuSModel, cam: Camera, R: np.ndarray, t: np.ndarray, grid: OccupancyGrid | None,
                    stale: Callable[[], bool], rays: int = BAND_RAYS) -> ViewRender | None:
    """render_image in bands of rows (each band a camera with the principal point moved up), checking
    `stale()` between bands: None when it turns true, so a newer camera is not kept waiting for a
    render nobody wants any more."""
    parts = []
    for y0, y1 in band_rows(cam.width, cam.height, rays):
        if stale():
            return None
        K = cam.K
        band = Camera.from_focal(cam.width, y1 - y0, K[0, 0], K[1, 1], K[0, 2], K[1, 2] - y0)
        parts.append(render_image(model, band, R, t, grid=grid))
    return ViewRender(*(np.concatenate([getattr(p, k) for p in parts], axis=0)
                        for k in ("rgb", "depth", "normal", "opacity")))


@dataclass
class _Snapshot:
    """The viewer's own copy of the model, refreshed between training steps."""

    model: NeuSModel | None = None
    step: int = 0
    version: int = 0
    grid: OccupancyGrid | None = None
    grid_version: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)


class BackgroundWork:
    """Part of Viewer: the weight snapshots (taken on the training thread) and the background thread's
    loop (`_work`) with what it does: camera updates, then renders, saves and meshes."""

    def _take_snapshot(self, step: int, model: NeuSModel, wait: bool = False) -> bool:
        """Copy the weights (between optimiser steps). Skipped when a render holds the copy, unless
        `wait` (the final weights after training, which must not be missed). True when copied."""
        if not self.snap.lock.acquire(blocking=wait):
            return False
        t0 = time.time()
        try:
            if self.snap.model is None:
                self.snap.model = copy.deepcopy(model).eval().requires_grad_(False)
            else:
                self.snap.model.load_state_dict(model.state_dict())
            self.snap.step = step
            self.snap.version += 1
            self.counts["snapshots"] += 1
        finally:
            self.snap.lock.release()
            self.counts["busy_s"] += time.time() - t0
        self._want_snapshot = False
        self._last_snapshot = time.time()
        with self._cond:
            self._cond.notify()
        return True

    def _share(self, now: float) -> float:
        """The share of wall time the background work may take now (schedule.duty_share): the
        interactive one while a camera moves or a browser waits for a view it has not been shown."""
        mode, version = str(self._mode.value), self.snap.version
        jobs = [c.job(now, version, mode) for c in list(self.clients.values())]
        interactive = any(j is not None and j.urgent for j in jobs) or any(
            c.moving(now) for c in list(self.clients.values()))
        return duty_share(self.training, interactive, self.opts.duty, self.opts.interactive_duty)

    def _work(self) -> None:
        """The background thread: scene updates, then (within the duty cycle while training) one piece
        of work at a time: a render someone waits for (a camera moved), a save, a due mesh, and last a
        render of newer weights (so those cannot starve the mesh)."""
        while not self._closed:
            with self._cond:
                self._cond.wait(timeout=0.05)
            if self._closed:
                break
            try:
                if self._dirty_cameras:
                    self._dirty_cameras = False
                    self._push_cameras()
                now = time.time()
                if now < idle_until(self._last_end, self._last_seconds, self._share(now)):
                    continue
                t0 = time.time()
                if (self._render_clients(urgent_only=True) or self._save_if_requested() or self._refresh_mesh()
                        or self._render_clients(urgent_only=False)):
                    self._last_end = time.time()
                    self._last_seconds = self._last_end - t0
                    self.counts["busy_s"] += self._last_seconds
            except Exception as exc:  # noqa: BLE001 (the viewer must never take the pipeline down)
                log.warning(f"viewer: {type(exc).__name__}: {exc}")
                time.sleep(1.0)

    def _snapshot_grid(self) -> OccupancyGrid | None:
        """The occupancy grid of the current snapshot (built once per snapshot; caller holds the lock)."""
        s = self.snap
        if s.grid_version != s.version:
            device = next(s.model.parameters()).device
            s.grid = OccupancyGrid.from_sdf(s.model.sdf.sdf, 48, device)
            s.grid_version = s.version
        return s.grid

    def _render_clients(self, urgent_only: bool) -> bool:
        """Render for the first browser whose view is out of date (schedule.ClientView.job; with
        `urgent_only`, only for a camera or mode not yet shown): its latest camera, low resolution while
        it moves, full once it rests. True when it rendered (or began to and gave up for a newer
        camera, which the next call renders)."""
        if self.snap.model is None or self.scene is None or self.scene.to_normalised is None:
            return False
        mode = str(self._mode.value)
        for client in self.server.get_clients().values():
            state = self.clients.get(client.client_id)
            job = None if state is None else state.job(time.time(), self.snap.version, mode)
            if job is not None and (job.urgent or not urgent_only):
                self._render_for(client, state, job, mode)
                return True
        return False

    def _render_for(self, client, state: ClientView, job: RenderJob, mode: str) -> None:
        """Render one job and send it to the browser, unless a newer camera came part way."""
        with self.snap.lock:
            version = self.snap.version
            out, Rn = self._render_job(job, lambda: state.superseded(job.request) or self._closed)
        if out is not None:
            client.scene.set_background_image(colourise(out, mode, Rn), format="jpeg")
            state.done(job, version, mode)
            self.counts["renders"] += 1

    def _render_job(self, job: RenderJob, stale: Callable[[], bool]) -> tuple[ViewRender | None, np.ndarray]:
        """The render of one request from the snapshot (caller holds its lock), and the camera rotation
        in the normalised frame; None for the render when it went stale part way."""
        req = job.request
        size = self.opts.render_high if job.high else self.opts.render_low
        pinhole, R, t = browser_camera(np.asarray(req.wxyz), np.asarray(req.position), req.fov, req.aspect, size)
        Rn, tn = self.scene.to_normalised.transform_pose(R, t)
        return render_in_bands(self.snap.model, pinhole, Rn, tn, self._snapshot_grid(), stale), Rn

    def _refresh_mesh(self) -> bool:
        """Extract the live mesh while browsers are connected, when schedule.mesh_due says so (every
        `_mesh_interval` steps while training, once for final weights). A mesh file shown after
        training (the exported mesh) wins over it. True when a mesh was attempted."""
        s = self.snap
        if s.model is None or self.scene is None or self.scene.to_normalised is None or not self.clients:
            return False
        if (self._mesh_file and not self.training) or not mesh_due(s.step, self._mesh_step, self._mesh_interval,
                                                                   self.training):
            return False
        with s.lock:
            step = s.step
            try:
                verts, faces = extract_mesh(s.model, self.opts.mesh_resolution)
            except FieldsError:
                verts = None
        self._mesh_step = step
        self.counts["meshes"] += 1
        if verts is not None:
            verts = self.scene.to_normalised.inverse().apply(verts)
            with self._mesh_lock:
                if not (self._mesh_file and not self.training):  # a mesh file may have come meanwhile
                    self._mesh_handle = self.server.scene.add_mesh_simple(
                        "/mesh", verts.astype(np.float32), faces.astype(np.uint32), color=(200, 200, 205),
                        visible=bool(self._show_mesh.value))
        return True

    def _save_if_requested(self) -> bool:
        """Write the snapshot's mesh into the run folder after "Save mesh now", and tell the browsers."""
        if not self._save_requested or self.snap.model is None or self.run is None or self.scene is None:
            return False
        self._save_requested = False
        path = self.run / f"mesh_step{self.snap.step:06d}.ply"
        with self.snap.lock:
            try:
                export_mesh(self.snap.model, self.scene, path, resolution=self.opts.save_resolution)
                message = f"wrote {path}"
            except FieldsError as exc:
                message = f"no mesh: {exc}"
        log.info(f"viewer: {message}")
        for client in self.server.get_clients().values():
            client.add_notification("Save mesh", message, auto_close_seconds=5.0)
        return True
