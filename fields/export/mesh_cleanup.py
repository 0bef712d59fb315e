"""Mesh cleanup: drop the surface no training camera saw (e.g. the underside of a ground), keep the largest part.

A vertex counts as seen when it projects inside some training image and lies no deeper than the
depth the field renders at that pixel (plus a tolerance). Unseen regions are where the SDF is
unconstrained, and what it makes there is guesswork, not the scene.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from fields.geometry.rays import project
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.render_view import render_image
from fields.neus.rendering import NeuSModel
from fields.scene import Scene


def seen_vertices(model: NeuSModel, scene: Scene, verts: np.ndarray, views: list[int], max_size: int = 96,
                  tolerance: float = 0.05, grid: OccupancyGrid | None = None) -> np.ndarray:
    """Boolean mask of vertices (normalised frame) visible in at least one of the views."""
    seen = np.zeros(len(verts), bool)
    for i in views:
        cam = scene.camera_of(i)
        s = min(1.0, max_size / max(cam.width, cam.height))
        cam = cam.resized(max(1, round(cam.width * s)), max(1, round(cam.height * s)))
        R, t = scene.normalised_pose(i)
        depth = render_image(model, cam, R, t, grid=grid).depth
        _, uv, inside = project(cam, R, t, verts)
        px = np.clip(uv.astype(np.int64), 0, [cam.width - 1, cam.height - 1])
        ray_dist = np.linalg.norm(verts + R.T @ t, axis=1)  # distance from the camera centre -R^T t
        seen |= inside & (ray_dist <= depth[px[:, 1], px[:, 0]] + tolerance)
    return seen


def cull_unseen(mesh: trimesh.Trimesh, seen: np.ndarray) -> trimesh.Trimesh:
    """Keep faces with at least one seen vertex."""
    keep = seen[mesh.faces].any(axis=1)
    out = mesh.copy()
    out.update_faces(keep)
    out.remove_unreferenced_vertices()
    return out


def largest_component(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    parts = mesh.split(only_watertight=False)
    return max(parts, key=lambda m: len(m.faces)) if len(parts) else mesh


@torch.no_grad()
def clean_mesh(mesh: trimesh.Trimesh, model: NeuSModel, scene: Scene, views: list[int], cull: bool,
               keep_largest: bool) -> trimesh.Trimesh:
    """The cleanup steps asked for, in order: visibility cull, then largest component."""
    if cull and len(views):
        grid = OccupancyGrid.from_sdf(model.sdf.sdf, 64, next(model.parameters()).device)
        mesh = cull_unseen(mesh, seen_vertices(model, scene, np.asarray(mesh.vertices), views, grid=grid))
    if keep_largest:
        mesh = largest_component(mesh)
    return mesh
