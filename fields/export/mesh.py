"""Mesh export: the SDF sampled in chunks on one grid, one marching-cubes pass, optional decimation,
vertex colours from the radiance field, written in the input frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh
from skimage.measure import marching_cubes

from fields.errors import FieldsError
from fields.export import MESH_FORMATS
from fields.export.mesh_cleanup import clean_mesh
from fields.geometry.volume import evaluate_on_grid
from fields.io_utils import atomic_write
from fields.neus.rendering import NeuSModel
from fields.scene import Scene


def sdf_grid(model: NeuSModel, resolution: int) -> tuple[np.ndarray, float]:
    """SDF on a resolution^3 grid over [-1, 1]^3 (outside the unit sphere forced positive) and its spacing."""
    device = next(model.parameters()).device
    vol = evaluate_on_grid(lambda x: torch.maximum(model.sdf.sdf(x), x.norm(dim=-1) - 1.0), resolution, device)
    return vol.numpy(), 2.0 / (resolution - 1)


def extract_mesh(model: NeuSModel, resolution: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (normalised frame) and faces, outward-facing, of the SDF's zero level set."""
    vol, _ = sdf_grid(model, resolution)
    surface = zero_level_set(vol)
    if surface is None:
        raise FieldsError("the field has no surface inside the unit sphere (training may have failed)")
    return surface


def zero_level_set(vol: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Outward-facing marching-cubes mesh (vertices in [-1, 1]^3, faces) of a grid from evaluate_on_grid."""
    if vol.min() >= 0.0 or vol.max() <= 0.0:
        return None
    spacing = 2.0 / (vol.shape[0] - 1)
    verts, faces, _, _ = marching_cubes(vol, 0.0, spacing=(spacing,) * 3, gradient_direction="ascent")
    return verts - 1.0, faces


@torch.no_grad()
def vertex_colours(model: NeuSModel, verts: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """uint8 colours from the radiance field, looking at each vertex along its inward normal."""
    device = next(model.parameters()).device
    cols = []
    for s in range(0, len(verts), chunk):
        x = torch.from_numpy(verts[s : s + chunk]).float().to(device)
        _, feat, grad = model.sdf.gradient(x, create_graph=False)
        n = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        cols.append(model.radiance(x, -n, grad, feat).cpu().numpy())
    rgb = np.concatenate(cols) if cols else np.zeros((0, 3))
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def decimate(mesh: trimesh.Trimesh, faces: int) -> trimesh.Trimesh:
    """Quadric-error decimation (fast-simplification through trimesh) down to about `faces` faces."""
    if faces <= 0 or len(mesh.faces) <= faces:
        return mesh
    try:
        return mesh.simplify_quadric_decimation(face_count=faces)
    except ImportError:
        raise FieldsError("decimation needs the fast-simplification package (pip install fast-simplification)") from None


def export_mesh(model: NeuSModel, scene: Scene, path: Path, resolution: int = 256, largest_component: bool = False,
                cull_unseen: bool = True, faces: int = 0) -> trimesh.Trimesh:
    """Extract, clean, decimate (to `faces` when > 0), colour and write a mesh in the input frame
    (format from the suffix), atomically."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in MESH_FORMATS:
        raise FieldsError(f"mesh format {fmt!r} not supported ({', '.join(MESH_FORMATS)})")
    verts, faces_ = extract_mesh(model, resolution)
    mesh = trimesh.Trimesh(verts, faces_, process=False)
    mesh = clean_mesh(mesh, model, scene, scene.train_views(),
                      cull_unseen, largest_component)
    if len(mesh.faces) == 0:
        raise FieldsError("no surface left after cleanup (no training camera sees the extracted surface)")
    mesh = decimate(mesh, faces)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=vertex_colours(model, np.asarray(mesh.vertices)))
    mesh.vertices = scene.to_normalised.inverse().apply(np.asarray(mesh.vertices))
    # binary PLY: float32 xyz and RGBA per vertex, a count and three int32 indices per face (text formats more)
    atomic_write(path, mesh.export, need_bytes=2 * (16 * len(mesh.vertices) + 13 * len(mesh.faces)))
    return mesh
