"""nerfstudio's camera-path JSON (`ns-render camera-path`): the poses a video is rendered from.

Each keyframe has a flattened 4x4 OpenGL camera-to-world (`camera_to_world`) and a vertical field of
view in degrees (`fov`); the image size is `render_width` x `render_height`. Poses are read and
written in the user's input frame (the frame of their transforms.json or COLMAP model), converted to
OpenCV world-to-camera here at the file edge.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from fields.errors import FieldsError
from fields.io_utils import write_json
from fields.scene import Camera
from sfm.io.transforms_json import c2w_gl_to_w2c_cv, w2c_cv_to_c2w_gl

CameraPose = tuple[Camera, np.ndarray, np.ndarray]  # camera, R, t (OpenCV world-to-camera)


def read_camera_path(path: Path) -> list[CameraPose]:
    """The keyframes of a camera-path file as (camera, R, t) in the input frame."""
    try:
        doc = json.loads(Path(path).read_text())
        if doc.get("camera_type", "perspective") != "perspective":
            raise ValueError(f"camera_type {doc['camera_type']!r} is not supported (perspective only)")
        w, h = int(doc["render_width"]), int(doc["render_height"])
        if w < 2 or h < 2:
            raise ValueError(f"render size {w}x{h} is too small")
        out = []
        for key in doc["camera_path"]:
            fov = math.radians(float(key["fov"]))
            if not 0.0 < fov < math.pi:
                raise ValueError(f"fov {key['fov']} is not between 0 and 180 degrees")
            m = np.asarray(key["camera_to_world"], float).reshape(4, 4)
            if not np.isfinite(m).all():
                raise ValueError("camera_to_world has non-finite values")
            f = 0.5 * h / math.tan(0.5 * fov)
            R, t = c2w_gl_to_w2c_cv(m)
            out.append((Camera.from_focal(w, h, f, f), R, t))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FieldsError(f"cannot read camera path {path}: {exc}") from None
    if not out:
        raise FieldsError(f"camera path {path} has no keyframes")
    return out


def write_camera_path(poses: list[CameraPose], path: Path, fps: int = 24) -> None:
    """A camera-path file for poses in the input frame (all with the first camera's size)."""
    cam = poses[0][0]
    keys = []
    for c, R, t in poses:
        fov = math.degrees(2.0 * math.atan(0.5 * c.height / c.K[1, 1]))
        keys.append({"camera_to_world": w2c_cv_to_c2w_gl(R, t).reshape(-1).tolist(), "fov": fov,
                     "aspect": c.width / c.height})
    doc = {"camera_type": "perspective", "render_width": cam.width, "render_height": cam.height, "fps": fps,
           "seconds": len(poses) / fps, "camera_path": keys}
    write_json(path, doc)
