"""`fields reconstruct` end to end on scenes with ground truth: time per stage, pose error, PSNR, Chamfer.

Run: .venv/bin/python benchmarks/end_to_end.py [--only demo,dino,lego25] [--preset auto] [--set KEY=VALUE]
Each scene is reconstructed from its photos alone by the `fields` command (a fresh run folder,
viewer off), then `fields eval views` scores the held-out photos (every 8th) and, for the demo, the
mesh against its ground-truth surface (Chamfer against all of it, and "seen": against the part its
cameras see); poses are compared with the ground truth after a Sim(3) alignment. dinoSparseRing:
Middlebury's 16 views; lego25: every 4th NeRF-synthetic train view at 400 px on white (the same
images as benchmarks/sfm_benchmark.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sfm_benchmark import datasets

from fields.errors import FieldsError
from fields.scene import Scene
from sfm.pose_metrics import compare_poses

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs"
FIELDS = [sys.executable, "-m", "apps.cli"]


def reconstruct(name: str, images: Path, run: Path, extra: list[str]) -> tuple[int, str, float]:
    """Return code, last error line and wall seconds of one `fields reconstruct`."""
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.time()
    proc = subprocess.run(FIELDS + ["reconstruct", str(images), "-o", str(run), "--no-viewer"] + extra,
                          cwd=ROOT, capture_output=True, text=True)
    err = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    return proc.returncode, (err[-1] if err else proc.stderr.strip().splitlines()[-1:] or [""])[0], time.time() - t0


def evaluate(run: Path, surface: Path | None, align: Path | None) -> dict:
    cmd = FIELDS + ["eval", "views", str(run)]
    if surface is not None:
        cmd += ["--surface", str(surface), "--align", str(align)]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads((run / "view_metrics.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="demo,dino,lego25")
    ap.add_argument("--preset", default="auto")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args()
    extra = ["--preset", args.preset] + [x for o in args.overrides for x in ("--set", o)]
    rows = []
    for name, gt, images in datasets(RUNS / "e2e_data", set(args.only.split(","))):
        run = RUNS / ("e2e_" + name.split()[0].lower())
        rc, err, wall = reconstruct(name, images, run, extra)
        stages = json.loads((run / "stages.json").read_text()) if (run / "stages.json").is_file() else {}
        row = {"name": name, "wall": wall, "stages": stages, "error": err if rc else ""}
        if (run / "scene.json").is_file():
            try:
                row["poses"] = compare_poses(Scene.load(run), gt)
            except FieldsError as exc:
                row["error"] = row["error"] or f"poses: {exc}"
        if rc == 0:
            demo = name.startswith("demo")
            row["views"] = evaluate(run, ROOT / "assets" / "demo" / "surface.ply" if demo else None,
                                    ROOT / "assets" / "demo" / "transforms.json" if demo else None)
        rows.append(row)
    print(f"fields reconstruct, preset {args.preset}" + (f", {' '.join(args.overrides)}" if args.overrides else ""))
    print(f"{'scene':22s} {'reg':>7s} {'rot med':>8s} {'sfm s':>6s} {'train s':>8s} {'mesh s':>7s} {'video s':>8s} "
          f"{'total s':>8s} {'PSNR':>6s} {'Chamfer %':>10s} {'seen %':>7s}")
    for r in rows:
        p, s, v = r.get("poses"), r["stages"], r.get("views", {})
        reg = f"{p.registered}/{p.total}" if p else "-"
        rot = f"{p.rotation_error_median_deg:8.3f}" if p and p.registered else f"{'-':>8s}"
        st = " ".join(f"{s[k]:{w}.0f}" if k in s else f"{'-':>{w}s}" for k, w in
                      (("sfm", 6), ("train", 8), ("mesh", 7), ("video", 8)))
        psnr = f"{v['psnr']:6.2f}" if v.get("psnr") is not None else f"{'-':>6s}"
        sf = v.get("surface")
        ch = f"{100 * sf['chamfer']:10.3f} {100 * sf['seen']['chamfer']:7.3f}" if sf else f"{'-':>10s} {'-':>7s}"
        print(f"{r['name']:22s} {reg:>7s} {rot} {st} {r['wall']:8.0f} {psnr} {ch}")
        if r["error"]:
            print(f"{'':22s} {r['error']}")


if __name__ == "__main__":
    main()
