"""The viewer's side panel: stage line, progress bar, render mode, mesh toggle, pause and save buttons,
and the loss / PSNR plots."""

from __future__ import annotations

import numpy as np

RENDER_MODES = ("RGB", "Depth", "Normals")


class Panels:
    """Part of Viewer: the GUI controls and their callbacks. The callbacks run on viser's threads, so
    they only set flags and wake the background thread (`_cond`); the work itself is done there."""

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
        """Forget what each browser was last sent, so every view is rendered again."""
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

    def set_stage(self, text: str, fraction: float | None = None) -> None:
        self._stage.content = f"**stage:** {text}"
        if fraction is not None:
            self._progress.value = float(np.clip(100.0 * fraction, 0.0, 100.0))

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
