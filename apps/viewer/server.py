"""The Viewer: a viser server that the pipeline reports to, composed of the side panel (gui), the
scene display (scene) and the background work (render); and start_viewer, which makes one from the
config."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from apps.viewer.gui import Panels
from apps.viewer.options import ViewerOptions
from apps.viewer.render import BackgroundWork, _Snapshot
from apps.viewer.scene import SceneDisplay
from apps.viewer.schedule import CameraRequest, ClientView, mesh_interval
from fields.errors import FieldsError
from fields.neus.rendering import NeuSModel
from fields.scene import Camera, Scene

log = logging.getLogger("fields")


class Viewer(Panels, SceneDisplay, BackgroundWork):
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
        self.clients: dict[int, ClientView] = {}
        self.training = False  # between training_listener and training_done
        self.paused = False
        self.history: list[tuple[int, float, float, float]] = []  # (step, loss, psnr, rays/s)
        self._thumbs: dict[int, np.ndarray] = {}
        self._dirty_cameras = False
        self._want_snapshot = False
        self._save_requested = False
        self._mesh_step = -1  # step of the snapshot the live mesh was taken from (-1: none)
        self._mesh_interval = max(1, self.opts.mesh_every)  # steps between live meshes (schedule.mesh_interval)
        self._mesh_file = False  # a mesh file (the exported mesh) is shown: it wins over the live mesh
        self._mesh_lock = threading.Lock()  # one writer of "/mesh" at a time (pipeline and background threads)
        self._live_model: tuple[int, NeuSModel] | None = None  # the training model and its step, while training
        self._last_snapshot = 0.0
        self._last_gui = 0.0
        self._last_end = 0.0  # when the background thread's last piece of work ended
        self._last_seconds = 0.0  # ... and how long it took
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

    def _on_connect(self, client) -> None:
        """A browser: render its camera now and whenever it moves (the latest camera replaces any
        request not yet rendered)."""
        state = ClientView()
        self.clients[client.client_id] = state

        def moved(cam) -> None:
            state.ask(CameraRequest(tuple(map(float, cam.wxyz)), tuple(map(float, cam.position)), float(cam.fov),
                                    float(cam.aspect), time.time()))
            with self._cond:
                self._cond.notify()

        moved(client.camera)
        client.camera.on_update(moved)
        self._want_snapshot = True
        with self._cond:
            self._cond.notify()

    # ----- what the pipeline reports (the SfM reports are in scene.py) ---------------------------
    def show_model(self, model: NeuSModel, step: int) -> None:
        """A trained model to render (fields view RUN); meshed once unless a mesh file is shown."""
        self._take_snapshot(step, model, wait=True)
        self._mesh_step = -1

    def training_listener(self, scene: Scene):
        """The callable for fields.neus.train.train(listener=...): plots, progress, snapshots, pause.
        The live mesh follows the steps actually planned (schedule.mesh_interval), the first one an
        interval in (the field's initial sphere says nothing about the scene)."""
        self.show_scene(scene, "training")
        self.training, self._mesh_file, self._mesh_step = True, False, 0
        self._add_training_controls()
        first: list[int] = []  # the first step reported (training may resume part way)
        next_mesh = [0]  # the step from which the next snapshot is taken for a mesh

        def listener(step: int, model: NeuSModel, stats: dict | None) -> float:
            now = time.time()
            self._live_model = (step, model)
            if not first:
                first.append(step - 1)
            if stats is not None:
                self._mesh_interval = mesh_interval(self.opts.mesh_every, stats["total"] - first[0],
                                                    self.opts.meshes_per_run)
                self.history.append((step, stats["loss"], stats["psnr"], stats["rays_per_s"]))
                if now - self._last_gui > self.opts.gui_every_s:
                    self._last_gui = now
                    self._update_plot()
                    self.set_stage(f"training: step {step}/{stats['total']}, loss {stats['loss']:.4f}, "
                                   f"PSNR {stats['psnr']:.2f} dB, {stats['rays_per_s']:.0f} rays/s",
                                   step / max(stats["total"], 1))
            mesh_snapshot = step >= max(next_mesh[0], self._mesh_step + self._mesh_interval)
            due = self.clients and (now - self._last_snapshot >= self.opts.snapshot_every_s or mesh_snapshot)
            if (due or self._want_snapshot) and self._take_snapshot(step, model) and mesh_snapshot:
                next_mesh[0] = step + self._mesh_interval  # not every step until the mesh is taken
            # the time held, measured by the clock so that it includes the snapshots taken while
            # paused and sleeps that overrun on busy cores
            start, paused = time.time(), False
            while self.paused and not self._closed:
                paused = True
                time.sleep(0.05)
                if self._want_snapshot:
                    self._take_snapshot(step, model)
            return time.time() - start if paused else 0.0

        return listener

    def training_done(self) -> None:
        """Training ended: its controls go, and the final weights are copied for the last live mesh
        and renders (training has stopped, so the model is whole)."""
        self.training = self.paused = False
        self._remove_training_controls()
        if self._live_model is not None:
            self._take_snapshot(*self._live_model, wait=True)
        self._live_model = None
        self.set_stage("training finished", 1.0)

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._cond.notify()
        self._worker.join(timeout=10.0)
        self.server.stop()


def start_viewer(cfg: dict, run: Path | None, enabled: bool | None = None, host: str | None = None,
                 port: int | None = None, required: bool = False) -> Viewer | None:
    """A Viewer from the config's viewer section (command-line flags win), its URL printed; None when off,
    or when it cannot start (a warning; FieldsError when required: the command is the viewer)."""
    section = dict(cfg.get("viewer", {}))
    if not (section.get("enabled", True) if enabled is None else enabled):
        return None
    if host:
        section["host"] = host
    if port is not None:
        section["port"] = port
    problem = _cannot_listen(section.get("host", ViewerOptions.host))
    viewer = None
    if problem is None:
        try:
            viewer = Viewer(ViewerOptions.from_dict(section), run)
        except (ImportError, OSError) as exc:
            problem = str(exc)
    if viewer is None:
        if required:
            raise FieldsError(f"the viewer could not start: {problem}")
        log.warning(f"viewer not started: {problem}")
        return None
    log.info(f"viewer: {viewer.url}")
    return viewer


def _cannot_listen(host: str) -> str | None:
    """Why a server cannot listen on host (an unknown name, an address of another machine), or None. Checked
    before viser starts: its server thread waits forever for a socket it could not open."""
    import socket

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.bind(addr)
    except (OSError, UnicodeError) as exc:
        return f"cannot listen on {host!r} ({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc})"
    return None
