"""SDF fitting (fields/fit/sdf.py) on analytic shapes: the sphere-residual field starts as a sphere,
the signed distance to surface samples matches a sphere's, and fitting moves the surface onto a box."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from apps.cli import main
from fields.eval.meshes import surface_distance
from fields.fit.sdf import SphereResidualSDF, SurfaceSamples, fit_sdf, unit_box
from fields.nn.builder import build_field, resolve_spec


def test_sphere_residual_starts_as_a_sphere():
    sdf = SphereResidualSDF(build_field(resolve_spec("triplane"), 3, 1), radius=0.5)
    x = torch.rand(100, 3) * 2 - 1
    assert torch.allclose(sdf(x), x.norm(dim=-1) - 0.5, atol=1e-6)
    mesh = trimesh.creation.box(extents=(2.0, 1.0, 4.0))
    sim = unit_box(mesh)
    assert np.allclose(np.abs(sim.apply(mesh.vertices)).max(), 0.8)


def test_signed_distance_to_surface_samples_matches_a_sphere():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    sim = unit_box(sphere)  # radius 0.8 in the unit box
    samples = SurfaceSamples(sphere, sim, n=100_000)
    x = torch.rand(4000, 3) * 2 - 1  # inside and outside, near (fine search) and far (coarse subset)
    exact = x.norm(dim=-1) - 0.8
    got = samples.signed_distance(x)
    near = exact.abs() < 0.1
    assert (got[near] - exact[near]).abs().max() < 0.01  # the sample spacing
    assert (got[~near] - exact[~near]).abs().max() < 0.05  # the coarse subset's spacing
    assert torch.equal(torch.sign(got[exact.abs() > 0.01]), torch.sign(exact[exact.abs() > 0.01]))


def test_fitting_moves_the_surface_onto_a_box(tmp_path, capsys):
    box = trimesh.creation.box(extents=(1.0, 0.6, 0.8))
    box.export(tmp_path / "box.ply")
    start = surface_distance(fit_sdf(SphereResidualSDF(build_field(resolve_spec("triplane"), 3, 1)), box, 60,
                                     max_steps=0, resolution=64).mesh, box, 50_000)
    assert main(["fit", "sdf", str(tmp_path / "box.ply"), "--field", "triplane", "--steps", "300", "--seconds", "60",
                 "--resolution", "64", "-o", str(tmp_path / "out.ply")]) == 0
    chamfer = float(capsys.readouterr().out.split()[1]) / 100.0
    assert chamfer < 0.5 * start.chamfer
    fitted = trimesh.load(tmp_path / "out.ply")
    assert np.allclose(fitted.bounds[:, 0], [-0.5, 0.5], atol=0.05)  # the long axis is found first
    (tmp_path / "bad.obj").write_text("not a mesh")
    assert main(["fit", "sdf", str(tmp_path / "bad.obj")]) == 2
