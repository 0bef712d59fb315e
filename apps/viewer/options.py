"""The viewer's settings (the config's `viewer` section)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class ViewerOptions:
    host: str = "127.0.0.1"  # another host only when asked
    port: int = 7007  # the next free port is taken when this one is busy
    snapshot_every_s: float = 2.0  # copy the training weights for rendering at most this often
    gui_every_s: float = 1.0  # refresh the stage line and the plots at most this often
    mesh_every: int = 500  # training steps between live mesh refreshes, at most ...
    meshes_per_run: int = 4  # ... and fewer when training plans fewer steps: this many meshes over the run
    mesh_resolution: int = 64  # marching-cubes grid of the live mesh
    save_resolution: int = 192  # marching-cubes grid of "save mesh now"
    render_low: int = 96  # longer side of renders while the browser camera moves
    render_high: int = 320  # ... once it rests
    duty: float = 0.05  # share of wall time the background work may take during training, cameras at rest
    interactive_duty: float = 0.3  # ... while a camera moves (no limit when nothing trains)
    thumbnail: int = 64  # longer side of the images on the frustums

    @staticmethod
    def from_dict(d: dict) -> ViewerOptions:
        known = {f.name for f in fields(ViewerOptions)}
        return ViewerOptions(**{k: v for k, v in d.items() if k in known})
