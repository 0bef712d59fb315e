"""Surface metrics (fields/eval/meshes.py): the Chamfer distance and F-score on known cases, the
visibility of a reference surface from cameras, and the Chamfer distance restricted to what they saw."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from synthetic import look_at_target, orbit, posed_cameras, ring_angles

from fields.eval.meshes import sample_with_normals, surface_distance, visible_from
from fields.scene import Camera

CAMERA = Camera.from_fov(300, 300, np.radians(40.0))  # square, a 40 deg field of view


def from_above() -> list:
    """Eight cameras on a ring of radius 3, 1.5 above the origin, looking at it."""
    return posed_cameras(CAMERA, orbit(ring_angles(8), 3.0, 1.5))


def test_surface_metrics_of_identical_and_scaled_spheres():
    a = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    same = surface_distance(a, a, n_points=200_000)
    # two independent samples of one surface: mean spacing ~ 0.5 sqrt(area / n) = 0.11 % of the diagonal
    assert same.chamfer < 0.002 and same.fscore > 0.9
    b = trimesh.creation.icosphere(subdivisions=4, radius=1.1)  # 0.1 apart; diagonal 2 sqrt(3)
    far = surface_distance(b, a, n_points=20000)
    assert far.chamfer == pytest.approx(0.1 / (2 * np.sqrt(3)), rel=0.05)
    assert far.fscore == 0.0


@pytest.mark.parametrize("distance", [3.0, 6.0])
def test_one_camera_sees_the_spherical_cap_it_should(distance):
    # a camera at distance D from a unit sphere sees the cap cos(theta) > 1 / D: (1 - 1 / D) / 2 of the area
    overhead = posed_cameras(CAMERA, look_at_target([(0.0, 0.0, distance)], up=(0.0, 1.0, 0.0)))
    sphere = trimesh.creation.icosphere(subdivisions=5)
    pts, normals = sample_with_normals(sphere, 200_000, seed=0)
    seen = visible_from(pts, normals, 200_000 / sphere.area, overhead)
    assert seen.mean() == pytest.approx((1.0 - 1.0 / distance) / 2.0, abs=0.03)
    assert seen[pts[:, 2] > 0.6].all() and not seen[pts[:, 2] < 1.0 / distance - 0.02].any()
    unoriented = visible_from(pts, normals, 200_000 / sphere.area, overhead,
                              outward=False)  # depth alone: the limb is looser, the far side still hidden
    assert unoriented.mean() == pytest.approx((1.0 - 1.0 / distance) / 2.0, abs=0.06) and not unoriented[pts[:, 2] < 0].any()


def test_a_slab_seen_from_above_hides_its_underside():
    slab = trimesh.creation.box(extents=(2.0, 2.0, 0.1))  # z from -0.05 to 0.05
    pts, normals = sample_with_normals(slab, 300_000, seed=0)
    ring = from_above()
    seen = visible_from(pts, normals, 300_000 / slab.area, ring)
    top, bottom = normals[:, 2] > 0.9, normals[:, 2] < -0.9
    assert seen[top].mean() > 0.99
    assert seen[bottom].mean() == 0.0  # it faces away from every camera
    by_depth = visible_from(pts, normals, 300_000 / slab.area, ring, outward=False)
    assert by_depth[top].mean() > 0.99 and by_depth[bottom].mean() < 0.1  # only a strip along the edges


def test_chamfer_against_the_seen_surface_forgives_only_what_no_camera_saw():
    slab = trimesh.creation.box(extents=(2.0, 2.0, 0.1))
    top = trimesh.Trimesh([[-1, -1, 0.05], [1, -1, 0.05], [1, 1, 0.05], [-1, 1, 0.05]], [[0, 1, 2], [0, 2, 3]])
    ring = from_above()
    whole = surface_distance(top, slab, n_points=100_000)
    seen = surface_distance(top, slab, n_points=100_000, cameras=ring).seen
    assert whole.chamfer > 0.008 and whole.recall < 0.6  # half the slab (its underside, sides) is missing
    assert seen.reference_share == pytest.approx(0.5 + 0.5 * 0.4 / 8.4, abs=0.05)  # top and the sides in view
    assert seen.chamfer < 0.3 * whole.chamfer and seen.precision > 0.99
    lifted = top.copy()
    lifted.vertices[:, 2] += 0.2  # a wrong surface stays wrong against the seen part too
    assert surface_distance(lifted, slab, n_points=100_000, cameras=ring).seen.chamfer > 0.03
