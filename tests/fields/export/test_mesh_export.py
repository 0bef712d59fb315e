"""Mesh export pieces (fields/export/mesh.py) on analytic shapes."""

from __future__ import annotations

import numpy as np
import trimesh


def test_decimation_keeps_a_sphere_on_the_sphere():
    from fields.export.mesh import decimate

    mesh = trimesh.creation.icosphere(subdivisions=5)
    small = decimate(mesh, 1000)
    assert 900 <= len(small.faces) <= 1000
    r = np.linalg.norm(small.vertices, axis=1)
    assert np.abs(r - 1.0).max() < 0.02
    assert decimate(mesh, 0) is mesh  # 0: off
