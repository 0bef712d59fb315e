"""The viewer's background work: renders of the field from each browser's camera, the live mesh and
"save mesh now", all from the viewer's own copy of the weights.

The training thread copies the weights into a _Snapshot between optimiser steps, so renders never see
half-updated weights. One background thread does the heavy work and, after each piece, idles long
enough to keep to a share of the wall time (`duty`, or `interactive_duty` while a browser camera
moves), which bounds how much it can slow training. The field lives in the normalised frame, so
browser cameras are mapped into it for rendering and meshes are mapped back to the input frame.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from apps.viewer.camera import browser_camera
from fields.errors import FieldsError
from fields.export.mesh import export_mesh, extract_mesh
from fields.export.video import depth_frames, normal_frame
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.render_view import render_image
from fields.neus.rendering import NeuSModel

log = logging.getLogger("fields")


def colourise(render, mode: str, R: np.ndarray) -> np.ndarray:
    """The render as an 8-bit RGB image in the chosen mode."""
    if mode == "Depth":
        img = depth_frames([render])[0]
    elif mode == "Normals":
        img = normal_frame(render, R)
    else:
        img = render.rgb
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


@dataclass
class _ClientState:
    camera_time: float = 0.0  # when the browser camera last moved
    rendered: tuple = ()  # (camera_time, snapshot version, high-res?, mode) of the last render sent


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
    loop (`_work`) with what it does: camera updates, then saves, meshes and renders in the duty cycle."""

    def _take_snapshot(self, step: int, model: NeuSModel) -> None:
        """Copy the weights (between optimiser steps); skipped when a render holds the copy."""
        if not self.snap.lock.acquire(blocking=False):
            return
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

    def _work(self) -> None:
        """The background thread: scene updates, then (within the duty cycle) renders and meshes."""
        while not self._closed:
            with self._cond:
                self._cond.wait(timeout=0.1)
            if self._closed:
                break
            try:
                if self._dirty_cameras:
                    self._dirty_cameras = False
                    self._push_cameras()
                if time.time() < self._busy_until:
                    continue
                t0 = time.time()
                did = self._save_if_requested() or self._refresh_mesh() or self._render_clients()
                if did:
                    self.counts["busy_s"] += time.time() - t0
                    moving = any(time.time() - c.camera_time < 1.0 for c in self.clients.values())
                    duty = self.opts.interactive_duty if moving else self.opts.duty
                    self._busy_until = time.time() + (time.time() - t0) * (1.0 / duty - 1.0)
            except Exception as exc:  # the viewer must never take the pipeline down
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

    def _render_clients(self) -> bool:
        """Render for the first browser whose view is out of date: low resolution while its camera
        moves, high once it has rested 0.3 s. True when a render was sent."""
        if self.snap.model is None or self.scene is None or self.scene.to_normalised is None:
            return False
        now = time.time()
        mode = str(self._mode.value)
        for client in self.server.get_clients().values():
            state = self.clients.get(client.client_id)
            if state is None:
                continue
            high = now - state.camera_time > 0.3
            key = (state.camera_time, self.snap.version, high, mode)
            if state.rendered == key or (state.rendered and state.rendered[:2] == key[:2] and state.rendered[2]):
                continue
            cam = client.camera
            size = self.opts.render_high if high else self.opts.render_low
            pinhole, R, t = browser_camera(np.asarray(cam.wxyz), np.asarray(cam.position), float(cam.fov),
                                           float(cam.aspect), size)
            Rn, tn = self.scene.to_normalised.transform_pose(R, t)
            with self.snap.lock:
                grid = self._snapshot_grid()
                out = render_image(self.snap.model, pinhole, Rn, tn, grid=grid)
            client.scene.set_background_image(colourise(out, mode, Rn), format="jpeg")
            state.rendered = key
            self.counts["renders"] += 1
            return True
        return False

    def _refresh_mesh(self) -> bool:
        """Extract the live mesh while browsers are connected: the first time, then whenever the snapshot
        is `mesh_every` steps past the last mesh. True when a mesh was attempted."""
        s = self.snap
        if s.model is None or self.scene is None or self.scene.to_normalised is None or not self.clients:
            return False
        if self._mesh_step >= 0 and s.step - self._mesh_step < self.opts.mesh_every:
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
