"""Live web viewer (viser): cameras, sparse points, the current mesh and renders of the field from the
browser's camera, while SfM and training run, and for a finished run (`fields view RUN`).

The pipeline only reports to it: SfM snapshots, the final Scene, and after each training step the
model, whose weights are copied between optimiser steps (renders never see half-updated weights).
The heavy work (thumbnails, renders, meshes) runs in one background thread that keeps to a share of
the wall time (`duty`), which bounds how much it can slow training. Everything is shown in the input
frame (the frame of sparse/0, transforms.json and mesh.ply); the field itself lives in the
normalised frame, so browser cameras are mapped into it for rendering.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from fields.errors import FieldsError
from fields.export.mesh import export_mesh, extract_mesh
from fields.export.video import depth_frames, normal_frame, render_image
from fields.images import composite
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.rendering import NeuSModel
from fields.scene import Camera, Scene

log = logging.getLogger("fields")

RENDER_MODES = ("RGB", "Depth", "Normals")


@dataclass
class ViewerOptions:
    host: str = "127.0.0.1"  # another host only when asked
    port: int = 7007  # the next free port is taken when this one is busy
    snapshot_every_s: float = 2.0  # copy the training weights for rendering at most this often
    gui_every_s: float = 1.0  # refresh the stage line and the plots at most this often
    mesh_every: int = 500  # training steps between mesh refreshes
    mesh_resolution: int = 64  # marching-cubes grid of the live mesh
    save_resolution: int = 192  # marching-cubes grid of "save mesh now"
    render_low: int = 96  # longer side of renders while the browser camera moves
    render_high: int = 320  # ... once it rests
    duty: float = 0.05  # share of wall time the background work may take while the camera rests
    interactive_duty: float = 0.3  # ... while it moves
    thumbnail: int = 64  # longer side of the images on the frustums

    @staticmethod
    def from_dict(d: dict) -> "ViewerOptions":
        known = {f.name for f in fields(ViewerOptions)}
        return ViewerOptions(**{k: v for k, v in d.items() if k in known})


def rotation_to_wxyz(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix (viser's orientation format)."""
    import viser.transforms as vtf

    return np.asarray(vtf.SO3.from_matrix(R).wxyz, float)


def wxyz_to_rotation(q: np.ndarray) -> np.ndarray:
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


class Viewer:
    """A viser server showing a run. Methods are called from the pipeline's thread and return fast."""

    def __init__(self, opts: ViewerOptions | None = None, run: Path | None = None) -> None:
        import viser

        self.opts = opts or ViewerOptions()
        self.run = run
        self.server = viser.ViserServer(host=self.opts.host, port=self.opts.port, verbose=False)
        self.scene: Scene | None = None  # views (names, images) and, once known, the normalisation
        self.poses: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.cameras: list[Camera] = []
        self.points = np.zeros((0, 3))
        self.point_rgb: np.ndarray | None = None
        self.snap = _Snapshot()
        self.clients: dict[int, _ClientState] = {}
        self.paused = False
        self.history: list[tuple[int, float, float]] = []  # (step, loss, psnr)
        self._thumbs: dict[int, np.ndarray] = {}
        self._dirty_cameras = False
        self._want_snapshot = False
        self._save_requested = False
        self._mesh_step = -1
        self._last_snapshot = 0.0
        self._last_gui = 0.0
        self._busy_until = 0.0
        # what the viewer did, for benchmarks: counts, and seconds spent copying weights (training
        # thread) and rendering / meshing (background thread)
        self.counts = {"snapshots": 0, "renders": 0, "meshes": 0, "busy_s": 0.0}
        self._closed = False
        self._aimed = False
        self._cond = threading.Condition()
        self._build_gui()
        self.server.on_client_connect(self._on_connect)
        self.server.on_client_disconnect(lambda c: self.clients.pop(c.client_id, None))
        self._worker = threading.Thread(target=self._work, name="fields-viewer", daemon=True)
        self._worker.start()

    @property
    def url(self) -> str:
        return f"http://{self.opts.host}:{self.server.get_port()}"

    # ----- GUI -----------------------------------------------------------------------------------
    def _build_gui(self) -> None:
        gui = self.server.gui
        self._stage = gui.add_markdown("**stage:** starting")
        self._progress = gui.add_progress_bar(0.0)
        self._mode = gui.add_dropdown("Render", RENDER_MODES, initial_value="RGB")
        self._show_mesh = gui.add_checkbox("Show mesh", True)
        self._pause = gui.add_button("Pause training", disabled=True)
        self._save = gui.add_button("Save mesh now", disabled=True)
        self._plots: list = []
        self._mode.on_update(lambda _: self._touch())
        self._show_mesh.on_update(self._on_show_mesh)
        self._pause.on_click(lambda _: self._toggle_pause())
        self._save.on_click(lambda _: self._request_save())

    def _touch(self) -> None:
        with self._cond:
            for c in self.clients.values():
                c.rendered = ()
            self._cond.notify()

    def _on_show_mesh(self, _) -> None:
        handle = getattr(self, "_mesh_handle", None)
        if handle is not None:
            handle.visible = bool(self._show_mesh.value)

    def _toggle_pause(self) -> None:
        self.paused = not self.paused
        self._pause.label = "Resume training" if self.paused else "Pause training"
        self._want_snapshot = True
        self.set_stage("training paused" if self.paused else "training")

    def _request_save(self) -> None:
        self._save_requested = True
        self._want_snapshot = True
        with self._cond:
            self._cond.notify()

    def _on_connect(self, client) -> None:
        state = _ClientState(camera_time=time.time())
        self.clients[client.client_id] = state

        def moved(_) -> None:
            state.camera_time = time.time()
            with self._cond:
                self._cond.notify()

        client.camera.on_update(moved)
        self._want_snapshot = True
        with self._cond:
            self._cond.notify()

    def set_stage(self, text: str, fraction: float | None = None) -> None:
        self._stage.content = f"**stage:** {text}"
        if fraction is not None:
            self._progress.value = float(np.clip(100.0 * fraction, 0.0, 100.0))

    # ----- what the pipeline reports -------------------------------------------------------------
    def show_inputs(self, scene: Scene) -> None:
        """The photos about to be reconstructed (names and images, no poses yet)."""
        self.scene = scene
        self.set_stage(f"sfm: {len(scene.views)} images", 0.0)

    def sfm_update(self, snap) -> None:
        """An sfm.neural.state.SfMSnapshot: frustums appear as views register and move in bundle adjustment."""
        self.poses = dict(snap.poses)
        self.cameras = list(snap.cameras)
        self.points, self.point_rgb = snap.points, None
        total = len(self.scene.views) if self.scene else max(len(self.poses), 1)
        self.set_stage(f"sfm: {snap.stage} ({len(self.poses)}/{total} views)", len(self.poses) / total)
        self._cameras_changed()

    def show_scene(self, scene: Scene, stage: str | None = None) -> None:
        """A posed Scene (after SfM, or a finished run): cameras, coloured points, the view's frame."""
        self.scene = scene
        self.poses = {i: (scene.views[i].R, scene.views[i].t) for i in scene.registered()}
        self.cameras = [scene.camera_of(i) for i in range(len(scene.views))]
        self.points = scene.points.xyz if len(scene.points) else np.zeros((0, 3))
        self.point_rgb = scene.points.rgb if len(scene.points) else None
        if stage:
            self.set_stage(stage, 1.0)
        self._aimed = False
        self._cameras_changed()

    def show_model(self, model: NeuSModel, step: int) -> None:
        """A trained model to render (fields view RUN)."""
        self._take_snapshot(step, model)
        self._mesh_step = -1

    def show_mesh(self, path: Path) -> None:
        """A mesh file in the input frame (with vertex colours when it has them)."""
        import trimesh

        mesh = trimesh.load(path, force="mesh", process=False)
        self._mesh_handle = self.server.scene.add_mesh_trimesh("/mesh", mesh, visible=bool(self._show_mesh.value))

    def training_listener(self, scene: Scene):
        """The callable for fields.neus.train.train(listener=...): plots, progress, snapshots, pause."""
        self.show_scene(scene, "training")
        self._pause.disabled = False
        self._save.disabled = self.run is None

        def listener(step: int, model: NeuSModel, stats: dict | None) -> float:
            now = time.time()
            if stats is not None:
                self.history.append((step, stats["loss"], stats["psnr"]))
                if now - self._last_gui > self.opts.gui_every_s:
                    self._last_gui = now
                    self._update_plot()
                    self.set_stage(f"training: step {step}/{stats['total']}, PSNR {stats['psnr']:.2f} dB, "
                                   f"{stats['rays_per_s']:.0f} rays/s", step / max(stats["total"], 1))
            due = self.clients and (now - self._last_snapshot >= self.opts.snapshot_every_s
                                    or step - max(self._mesh_step, 0) >= self.opts.mesh_every)
            if due or self._want_snapshot:
                self._take_snapshot(step, model)
            # the time held, by the clock: counting 0.05 s per sleep missed the snapshots taken while
            # paused and the sleeps that overrun on busy cores
            start, paused = time.time(), False
            while self.paused and not self._closed:
                paused = True
                time.sleep(0.05)
                if self._want_snapshot:
                    self._take_snapshot(step, model)
            return time.time() - start if paused else 0.0

        return listener

    def training_done(self) -> None:
        self._pause.disabled = True
        self.paused = False
        self.set_stage("training finished", 1.0)

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._cond.notify()
        self._worker.join(timeout=10.0)
        self.server.stop()

    # ----- internals -----------------------------------------------------------------------------
    def _cameras_changed(self) -> None:
        with self._cond:
            self._dirty_cameras = True
            self._cond.notify()

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

    def _update_plot(self) -> None:
        """Loss and PSNR against the step (the last 2000 reports)."""
        import viser.uplot as uplot

        h = np.array(self.history[-2000:], float)
        if len(h) < 2:
            return
        for k, (label, colour) in enumerate((("loss", "red"), ("PSNR (dB)", "blue"))):
            data = (h[:, 0], h[:, k + 1])
            if k < len(self._plots):
                self._plots[k].data = data
            else:
                self._plots.append(self.server.gui.add_uplot(
                    data, (uplot.Series(label="step"), uplot.Series(label=label, stroke=colour, width=2)),
                    title=label, scales={"x": uplot.Scale(time=False)}, aspect=2.0))

    def _aim(self, centres: np.ndarray) -> None:
        """Point the initial camera and the open browsers' cameras at the scene the cameras look at."""
        if not self.poses:
            return
        up = -np.mean([R[1] for R, _ in self.poses.values()], axis=0)
        up = up / max(float(np.linalg.norm(up)), 1e-9)
        target = np.median(self.points, axis=0) if len(self.points) else centres.mean(0)
        eye = centres.mean(0) + 1.5 * (centres.mean(0) - target) + 1.0 * scene_extent(centres) * up
        cam = self.server.initial_camera
        cam.position, cam.look_at, cam.up = tuple(eye), tuple(target), tuple(up)
        for client in self.server.get_clients().values():
            with client.atomic():
                client.camera.up_direction = tuple(up)
                client.camera.position = tuple(eye)
                client.camera.look_at = tuple(target)
        self._aimed = True

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

    def _thumbnail(self, i: int) -> np.ndarray | None:
        if i not in self._thumbs and self.scene is not None and self.scene.views[i].path is not None:
            try:
                img, _ = self.scene.image(i, self.opts.thumbnail)
            except (FieldsError, OSError):
                return None
            self._thumbs[i] = np.clip(np.round(composite(img) * 255.0), 0, 255).astype(np.uint8)
        return self._thumbs.get(i)

    def _push_cameras(self) -> None:
        poses, cameras = dict(self.poses), list(self.cameras)
        centres = np.array([-R.T @ t for R, t in poses.values()]) if poses else np.zeros((0, 3))
        ext = scene_extent(centres, self.points)
        for i, (R, t) in poses.items():
            cam = cameras[i] if i < len(cameras) else None
            if cam is None:
                continue
            fov = 2.0 * math.atan(0.5 * cam.height / cam.K[1, 1])
            self.server.scene.add_camera_frustum(
                f"/cameras/{i:04d}", fov=fov, aspect=cam.width / cam.height, scale=0.08 * ext,
                thickness=0.004 * ext, color=(230, 80, 40), image=self._thumbnail(i), format="jpeg",
                wxyz=rotation_to_wxyz(R.T), position=-R.T @ t)
        if not self._aimed:
            self._aim(centres)
        if len(self.points):
            rgb = self.point_rgb if self.point_rgb is not None else np.array([60, 200, 90], np.uint8)
            self.server.scene.add_point_cloud("/points", np.asarray(self.points, np.float32), rgb,
                                              point_size=0.01 * ext, point_shape="circle")

    def _snapshot_grid(self) -> OccupancyGrid | None:
        """The occupancy grid of the current snapshot (built once per snapshot; caller holds the lock)."""
        s = self.snap
        if s.grid_version != s.version:
            device = next(s.model.parameters()).device
            s.grid = OccupancyGrid.from_sdf(s.model.sdf.sdf, 48, device)
            s.grid_version = s.version
        return s.grid

    def _render_clients(self) -> bool:
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


def start_viewer(cfg: dict, run: Path | None, enabled: bool | None = None, host: str | None = None,
                 port: int | None = None) -> Viewer | None:
    """A Viewer from the config's viewer section (command-line flags win), its URL printed; None when off."""
    section = dict(cfg.get("viewer", {}))
    if not (section.get("enabled", True) if enabled is None else enabled):
        return None
    if host:
        section["host"] = host
    if port is not None:
        section["port"] = port
    try:
        viewer = Viewer(ViewerOptions.from_dict(section), run)
    except (ImportError, OSError) as exc:
        log.warning(f"viewer not started: {exc}")
        return None
    log.info(f"viewer: {viewer.url}")
    return viewer
