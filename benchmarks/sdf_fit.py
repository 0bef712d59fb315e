"""SDF fitting on ../shared/data/meshes: Chamfer and F-score against a time budget, per field.

Run: .venv/bin/python benchmarks/sdf_fit.py [--meshes bunny,armadillo] [--fields hash,triplane,rbf] [--seconds 30]
Same loss, batch and learning rates for every field (those of `fields fit sdf`); 2 threads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import trimesh

from fields.eval.meshes import surface_distance
from fields.fit.sdf import SphereResidualSDF, fit_sdf, sdf_spec
from fields.nn.builder import build_field

MESHES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "meshes"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", default="bunny,armadillo")
    ap.add_argument("--fields", default="hash,triplane,rbf")
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    if not MESHES.is_dir():
        sys.exit(f"skipped: {MESHES} is absent")
    torch.set_num_threads(2)
    print(f"SDF fitting, {args.seconds:g} s budget, torch {torch.__version__}, 2 threads; Chamfer in % of the bbox diagonal")
    print(f"{'mesh':10s} {'field':9s} {'steps':>6s} {'seconds':>8s} {'Chamfer %':>10s} {'F@0.5%':>7s}")
    for name in args.meshes.split(","):
        mesh = trimesh.load(MESHES / f"{name}.obj", force="mesh", process=False)
        for field in args.fields.split(","):
            torch.manual_seed(0)
            fit = fit_sdf(SphereResidualSDF(build_field(sdf_spec(field), 3, 1)), mesh, args.seconds, batch=2048)
            rep = surface_distance(fit.mesh, mesh) if len(fit.mesh.faces) else None
            cells = f"{100 * rep.chamfer:10.3f} {rep.fscore:7.3f}" if rep else f"{'no surface':>10s} {'-':>7s}"
            print(f"{name:10s} {field:9s} {fit.steps:6d} {fit.seconds:8.1f} {cells}", flush=True)


if __name__ == "__main__":
    main()
