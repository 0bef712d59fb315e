"""Live web viewer (viser): cameras, sparse points, the current mesh and renders of the field from the
browser's camera, while SfM and training run, and for a finished run (`fields view RUN`).

The pipeline only reports to it: SfM snapshots, the final Scene, and after each training step the
model, whose weights are copied between optimiser steps (renders never see half-updated weights).
The heavy work (thumbnails, renders, meshes) runs in one background thread; while training runs it
keeps to a share of the wall time (`duty`), which bounds how much it can slow training, and with
nothing training it follows the browser's camera as fast as it can render. Everything is shown in the input
frame (the frame of sparse/0, transforms.json and mesh.ply); the field itself lives in the
normalised frame, so browser cameras are mapped into it for rendering.

Modules: options (ViewerOptions), camera (viser <-> fields camera maths), gui (side panel), scene
(frustums, points, mesh file), schedule (which render is owed, the duty cycle, the live mesh's
interval), render (weight snapshots and the background thread), server (Viewer, start_viewer).
"""

from apps.viewer.camera import (
    browser_camera,
    rotation_to_wxyz,
    scene_extent,
    wxyz_to_rotation,
)
from apps.viewer.gui import RENDER_MODES
from apps.viewer.options import ViewerOptions
from apps.viewer.render import colourise
from apps.viewer.server import Viewer, start_viewer

__all__ = [
    "RENDER_MODES",
    "Viewer",
    "ViewerOptions",
    "browser_camera",
    "colourise",
    "rotation_to_wxyz",
    "scene_extent",
    "start_viewer",
    "wxyz_to_rotation",
]
