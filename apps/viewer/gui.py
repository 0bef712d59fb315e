"""The viewer's side panel: stage line, progress bar, render mode and mesh toggle; the training
controls (pause, save mesh now), present only while training runs; and the loss / PSNR / rays-per-
second plots against the step, their axes labelled."""

from __future__ import annotations

import numpy as np

RENDER_MODES = ("RGB", "Depth", "Normals")

# the plots: (title, y-axis label, column of Viewer.history, colour)
PLOTS = (("loss", "loss", 1, "red"), ("PSNR", "PSNR (dB)", 2, "blue"), ("speed", "rays/s", 3, "green"))


def plot_options(y_label: str, colour: str) -> dict:
    """viser.uplot options for one quantity against the step: both axes labelled (x "step", y the
    quantity) and no legend, whose hover values read "step: --" until a cursor is over the plot (the
    title and the y label already name the curve)."""
    from viser import uplot

    return {
        "series": (uplot.Series(label="step"), uplot.Series(label=y_label, stroke=colour, width=2)),
        "axes": (uplot.Axis(label="step"), uplot.Axis(label=y_label)),
        "legend": uplot.Legend(show=False),
        "scales": {"x": uplot.Scale(time=False)},
    }


class Panels:
    """Part of Viewer: the GUI controls and their callbacks. The callbacks run on viser's threads, so
    they only set flags and wake the background thread (`_cond`); the work itself is done there."""

    def _build_gui(self) -> None:
        gui = self.server.gui
        self._stage = gui.add_markdown("**stage:** starting")
        self._progress = gui.add_progress_bar(0.0)
        self._mode = gui.add_dropdown("Render", RENDER_MODES, initial_value="RGB")
        self._show_mesh = gui.add_checkbox("Show mesh", True)
        self.training_controls = None  # the "Training" folder (pause, save mesh now) while training runs
        self._pause = self._save = None
        self._plots: list = []
        self._mode.on_update(lambda _: self._touch())
        self._show_mesh.on_update(self._on_show_mesh)

    def _add_training_controls(self) -> None:
        """Pause and "save mesh now", in a folder of their own, when training starts."""
        if self.training_controls is not None:
            return
        gui = self.server.gui
        self.training_controls = gui.add_folder("Training")
        with self.training_controls:
            self._pause = gui.add_button("Pause training")
            self._save = gui.add_button("Save mesh now", disabled=self.run is None)
        self._pause.on_click(lambda _: self._toggle_pause())
        self._save.on_click(lambda _: self._request_save())

    def _remove_training_controls(self) -> None:
        """Take the training controls away when training ends (nothing left to pause)."""
        if self.training_controls is not None:
            self.training_controls.remove()
        self.training_controls = self._pause = self._save = None

    def _touch(self) -> None:
        """Forget what each browser was last sent, so every view is rendered again."""
        with self._cond:
            for c in self.clients.values():
                c.forget()
            self._cond.notify()

    def _on_show_mesh(self, _) -> None:
        handle = getattr(self, "_mesh_handle", None)
        if handle is not None:
            handle.visible = bool(self._show_mesh.value)

    def _toggle_pause(self) -> None:
        self.paused = not self.paused
        if self._pause is not None:
            self._pause.label = "Resume training" if self.paused else "Pause training"
        self._want_snapshot = True
        self.set_stage("training paused" if self.paused else "training")

    def _request_save(self) -> None:
        self._save_requested = True
        self._want_snapshot = True
        with self._cond:
            self._cond.notify()

    def set_stage(self, text: str, fraction: float | None = None) -> None:
        self._stage.content = f"**stage:** {text}"
        if fraction is not None:
            self._progress.value = float(np.clip(100.0 * fraction, 0.0, 100.0))

    def _update_plot(self) -> None:
        """Loss, PSNR and rays/s against the step (the last 2000 reports)."""
        h = np.array(self.history[-2000:], float)
        if len(h) < 2:
            return
        for k, (title, y_label, column, colour) in enumerate(PLOTS):
            data = (h[:, 0], h[:, column])
            if k < len(self._plots):
                self._plots[k].data = data
            else:
                self._plots.append(self.server.gui.add_uplot(data, title=title, aspect=2.0,
                                                             **plot_options(y_label, colour)))
