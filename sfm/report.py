"""The per-image SfM report: registered or why not, observations, mean reprojection error, timings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fields.io_utils import write_json
from fields.scene import Scene
from sfm.geometry.triangulation import reprojection_error


def name_list(names: list[str], limit: int = 8) -> str:
    """Names for a one-line message: the first `limit`, then how many more."""
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def view_rows(scene: Scene, reasons: dict[int, str] | None = None) -> list[dict]:
    """One row per view, measured on the scene itself (any backend)."""
    obs: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(scene.views))}
    for p, track in enumerate(scene.points.tracks):
        for v, k in track:
            obs[int(v)].append((p, int(k)))
    rows = []
    for i, v in enumerate(scene.views):
        row = {"name": v.name, "registered": v.registered, "observations": 0, "error_px": None}
        if v.registered and obs[i] and v.keypoints is not None:
            p, k = np.array(obs[i]).T
            err = reprojection_error(scene.camera_of(i).K, v.R, v.t, scene.points.xyz[p], v.keypoints[k])
            row["observations"], row["error_px"] = len(p), round(float(np.mean(err)), 3)
        if not v.registered:
            row["reason"] = (reasons or {}).get(i) or "not registered"
        rows.append(row)
    return rows


def write_report(path: Path, backend: str, seconds: float, rows: list[dict]) -> None:
    doc = {"backend": backend, "seconds": round(seconds, 2),
           "registered": sum(r["registered"] for r in rows), "views": len(rows), "per_view": rows}
    write_json(path, doc)
