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
from apps.viewer.render import BackgroundWork, _ClientState, _Snapshot
from apps.viewer.scene import SceneDisplay
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

    # ----- what the pipeline reports (the SfM reports are in scene.py) ---------------------------
    def show_model(self, model: NeuSModel, step: int) -> None:
        """A trained model to render (fields view RUN)."""
        self._take_snapshot(step, model)
        self._mesh_step = -1

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
        self._pause.disabled = True
        self.paused = False
        self.set_stage("training finished", 1.0)

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._cond.notify()
        self._worker.join(timeout=10.0)
        self.server.stop()


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
