"""Videos of a trained field: RGB, depth and normals along an orbit (or given poses), MP4 with even sizes."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from fields.io_utils import atomic_write
from fields.neus.render_view import ViewRender
from fields.scene import Camera, Scene, look_at


def even_camera(cam: Camera, max_size: int) -> Camera:
    """The camera resized so its longer side is about max_size and both sides are even."""
    s = min(1.0, max_size / max(cam.width, cam.height))
    w, h = max(2, int(round(cam.width * s / 2)) * 2), max(2, int(round(cam.height * s / 2)) * 2)
    return cam.resized(w, h)


def orbit_poses(scene: Scene, n_frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Poses (normalised frame) circling the origin at the cameras' median distance and elevation."""
    poses = [scene.normalised_pose(i) for i in scene.registered()]
    centers = np.array([-R.T @ t for R, t in poses])
    up = -np.mean([R[1] for R, _ in poses], axis=0)
    up /= np.linalg.norm(up)
    radius = float(np.median(np.linalg.norm(centers, axis=1)))
    height = float(np.median(centers @ up))
    ref = centers[0] - (centers[0] @ up) * up
    ref = ref / max(np.linalg.norm(ref), 1e-9)
    side = np.cross(up, ref)
    ring = np.sqrt(max(radius**2 - height**2, 1e-6))
    out = []
    for k in range(n_frames):
        a = 2.0 * np.pi * k / n_frames
        c = height * up + ring * (np.cos(a) * ref + np.sin(a) * side)
        out.append(look_at(c, np.zeros(3), up))
    return out


def depth_frames(renders: list[ViewRender]) -> list[np.ndarray]:
    """Depth as colour (near bright, far dark) with one range for the whole video, so frames agree;
    empty pixels black."""
    fg = np.concatenate([r.depth[r.opacity > 0.5] for r in renders])
    lo, hi = (np.percentile(fg, [1, 99]) if fg.size else (0.0, 1.0))
    out = []
    for r in renders:
        v = 1.0 - np.clip((r.depth - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
        out.append(colour_ramp(v) * r.opacity[..., None])
    return out


def colour_ramp(v: np.ndarray) -> np.ndarray:
    """A perceptually ordered dark-blue -> teal -> yellow ramp for values in [0, 1]."""
    stops = np.array([[0.05, 0.03, 0.25], [0.15, 0.35, 0.55], [0.2, 0.65, 0.5], [0.65, 0.85, 0.25], [1.0, 0.95, 0.3]])
    x = np.linspace(0.0, 1.0, len(stops))
    return np.stack([np.interp(v, x, stops[:, c]) for c in range(3)], -1)


def normal_frame(render: ViewRender, R: np.ndarray) -> np.ndarray:
    """Normals in the camera frame as colour, OpenGL-style (x right, y up, z towards the viewer):
    (n + 1) / 2 over the covered pixels, black elsewhere."""
    n_cam = render.normal @ R.T * np.array([1.0, -1.0, -1.0])
    length = np.linalg.norm(n_cam, axis=-1, keepdims=True)
    unit = n_cam / np.maximum(length, 1e-8)
    return (unit * 0.5 + 0.5) * render.opacity[..., None]


def write_video(frames: list[np.ndarray], path: Path, fps: int = 24) -> None:
    """H.264 MP4 (yuv420p) from float RGB frames, written atomically."""
    def write(tmp: Path) -> None:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2) as w:
            for f in frames:
                w.append_data(np.clip(np.round(f * 255.0), 0, 255).astype(np.uint8))

    # H.264 keeps well under a tenth of the raw frames' bytes; that tenth is the space asked for
    atomic_write(path, write, need_bytes=sum(f.size for f in frames) // 10)
