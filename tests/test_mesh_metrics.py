"""Visibility of a reference surface from cameras, and the Chamfer distance restricted to it."""

import numpy as np
import pytest
import trimesh

from fields.eval.meshes import sample_with_normals, surface_distance, visible_from
from fields.scene import Camera, look_at


def camera_at(center, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0), size=300, fov_deg=40.0):
    R, t = look_at(np.asarray(center, float), np.asarray(target, float), np.asarray(up, float))
    return Camera.from_fov(size, size, np.radians(fov_deg)), R, t


@pytest.mark.parametrize("distance", [3.0, 6.0])
def test_one_camera_sees_the_spherical_cap_it_should(distance):
    # a camera at distance D from a unit sphere sees the cap cos(theta) > 1 / D: (1 - 1 / D) / 2 of the area
    sphere = trimesh.creation.icosphere(subdivisions=5)
    pts, normals = sample_with_normals(sphere, 200_000, seed=0)
    seen = visible_from(pts, normals, 200_000 / sphere.area, [camera_at((0.0, 0.0, distance), up=(0, 1, 0))])
    assert seen.mean() == pytest.approx((1.0 - 1.0 / distance) / 2.0, abs=0.03)
    assert seen[pts[:, 2] > 0.6].all() and not seen[pts[:, 2] < 1.0 / distance - 0.02].any()
    unoriented = visible_from(pts, normals, 200_000 / sphere.area, [camera_at((0.0, 0.0, distance), up=(0, 1, 0))],
                              outward=False)  # depth alone: the limb is looser, the far side still hidden
    assert unoriented.mean() == pytest.approx((1.0 - 1.0 / distance) / 2.0, abs=0.06) and not unoriented[pts[:, 2] < 0].any()


def test_a_slab_seen_from_above_hides_its_underside():
    slab = trimesh.creation.box(extents=(2.0, 2.0, 0.1))  # z from -0.05 to 0.05
    pts, normals = sample_with_normals(slab, 300_000, seed=0)
    ring = [camera_at((3.0 * np.cos(a), 3.0 * np.sin(a), 1.5)) for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    seen = visible_from(pts, normals, 300_000 / slab.area, ring)
    top, bottom = normals[:, 2] > 0.9, normals[:, 2] < -0.9
    assert seen[top].mean() > 0.99
    assert seen[bottom].mean() == 0.0  # it faces away from every camera
    by_depth = visible_from(pts, normals, 300_000 / slab.area, ring, outward=False)
    assert by_depth[top].mean() > 0.99 and by_depth[bottom].mean() < 0.1  # only a strip along the edges


def test_chamfer_against_the_seen_surface_forgives_only_what_no_camera_saw():
    slab = trimesh.creation.box(extents=(2.0, 2.0, 0.1))
    top = trimesh.Trimesh([[-1, -1, 0.05], [1, -1, 0.05], [1, 1, 0.05], [-1, 1, 0.05]], [[0, 1, 2], [0, 2, 3]])
    ring = [camera_at((3.0 * np.cos(a), 3.0 * np.sin(a), 1.5)) for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    whole = surface_distance(top, slab, n_points=100_000)
    seen = surface_distance(top, slab, n_points=100_000, cameras=ring).seen
    assert whole.chamfer > 0.008 and whole.recall < 0.6  # half the slab (its underside, sides) is missing
    assert seen.reference_share == pytest.approx(0.5 + 0.5 * 0.4 / 8.4, abs=0.05)  # top and the sides in view
    assert seen.chamfer < 0.3 * whole.chamfer and seen.precision > 0.99
    lifted = top.copy()
    lifted.vertices[:, 2] += 0.2  # a wrong surface stays wrong against the seen part too
    assert surface_distance(lifted, slab, n_points=100_000, cameras=ring).seen.chamfer > 0.03
