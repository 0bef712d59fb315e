"""The viewer's settings (the config's `viewer` section)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from fields.settings import setting


@dataclass
class ViewerOptions:
    host: str = "127.0.0.1"  # another host only when asked
    port: int = setting(7007, ge=0, le=65535)  # the next free port is taken when this one is busy (0: any free one)
    snapshot_every_s: float = setting(2.0, ge=0)  # copy the training weights for rendering at most this often
    gui_every_s: float = setting(1.0, ge=0)  # refresh the stage line and the plots at most this often
    mesh_every: int = setting(500, ge=1)  # training steps between live mesh refreshes, at most ...
    meshes_per_run: int = setting(4, ge=0)  # ... and fewer when training plans fewer steps: this many meshes over the run (0: mesh_every alone)
    mesh_resolution: int = setting(64, ge=2)  # marching-cubes grid of the live mesh
    save_resolution: int = setting(192, ge=2)  # marching-cubes grid of "save mesh now"
    render_low: int = setting(96, ge=1)  # longer side of renders while the browser camera moves
    render_high: int = setting(320, ge=1)  # ... once it rests
    duty: float = setting(0.05, gt=0, le=1)  # share of wall time the background work may take during training, cameras at rest
    interactive_duty: float = setting(0.3, gt=0, le=1)  # ... while a camera moves (no limit when nothing trains)
    thumbnail: int = setting(64, ge=1)  # longer side of the images on the frustums

    @staticmethod
    def from_dict(d: dict) -> ViewerOptions:
        known = {f.name for f in fields(ViewerOptions)}
        return ViewerOptions(**{k: v for k, v in d.items() if k in known})
