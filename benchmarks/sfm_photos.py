"""SfM from the photos alone, as `fields sfm IMAGES` runs it: no intrinsics given (the focal length
guessed from the image size, as for photos without EXIF, and refined), the neural backend and pycolmap's
incremental mapper side by side, over several seeds, against the ground truth.

Run: .venv/bin/python benchmarks/sfm_photos.py [--only demo,dino,herzjesu,lego25] [--seeds 0,1]
[--backends neural,colmap]
Where sfm_benchmark.py gives both backends the ground-truth K, this shows what a user without it gets
and how much it depends on the seed (RANSAC in verification, PnP and two-view geometry, the SDF's
initialisation). Errors after a robust Sim(3) alignment of camera centres (sfm/pose_metrics.py;
"aligned": the views it rests on); "focal": the refined focal length's error against the ground truth.
2 threads.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pycolmap
import torch
from sfm_benchmark import run_rows

from fields.scene import Scene
from sfm.colmap import classical_sfm
from sfm.frontend.extract import FrontEndOptions
from sfm.io import read_image_folder
from sfm.neural.mapper import neural_sfm
from sfm.neural.options import NeuralSfMOptions
from sfm.pose_metrics import compare_poses


def solve(backend: str, folder: Path, work: Path, seed: int):
    """The backend's poses for the images of folder, with nothing known but the images."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dino folder's text files, skipped
        inputs = read_image_folder(folder)
    front = FrontEndOptions(seed=seed)
    if backend == "neural":
        return neural_sfm(inputs, folder, work, front, NeuralSfMOptions(seed=seed))[0]
    return classical_sfm(inputs, folder, work, front, "incremental")


def solve_row(backend: str, seed: int, gt: Scene, folder: Path, work: Path) -> tuple[float, dict]:
    """(wall seconds, pose report with the focal length's error) of one run, or the error it failed with."""
    t0 = time.time()
    try:
        scene = solve(backend, folder, work, seed)
        rep = compare_poses(scene, gt).to_dict()
        rep["focal"] = abs(scene.cameras[0].K[0, 0] / gt.cameras[gt.views[0].camera].K[0, 0] - 1.0)
    except Exception as exc:  # a failed run is a row, not the end of the benchmark
        rep = {"error": f"{type(exc).__name__}: {exc}"}
    return time.time() - t0, rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="demo,dino,herzjesu,lego25")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--backends", default="neural,colmap")
    args = ap.parse_args()
    if unknown := set(args.backends.split(",")) - {"neural", "colmap"}:
        ap.error(f"unknown backends {sorted(unknown)}; choose from colmap, neural")
    rows = run_rows("sfm_photos_", set(args.only.split(",")), args.backends.split(","),
                    [int(x) for x in args.seeds.split(",")], solve_row)
    print(f"SfM from photos alone, torch {torch.__version__}, pycolmap {pycolmap.__version__}, 2 threads")
    print(f"{'scene':22s} {'backend':8s} {'seed':>4s} {'reg':>7s} {'aligned':>7s} {'rot med':>8s} {'rot mean':>8s} "
          f"{'ctr med %':>9s} {'AUC5':>6s} {'focal %':>7s} {'wall s':>6s}")
    for name, backend, seed, wall, r in rows:
        head = f"{name:22s} {backend:8s} {seed:>4d}"
        if "error" in r:
            print(f"{head} failed: {r['error']}")
            continue
        print(f"{head} {r['registered']:>3d}/{r['total']:<3d} {r['aligned']:>7d} {r['rotation_error_median_deg']:8.3f} "
              f"{r['rotation_error_mean_deg']:8.3f} {100 * r['center_error_median']:9.3f} {100 * r['auc5']:6.1f} "
              f"{100 * r['focal']:7.2f} {wall:6.0f}")


if __name__ == "__main__":
    main()
