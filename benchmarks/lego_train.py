"""NeuS training on NeRF-synthetic lego on the CPU: test-view PSNR / SSIM / depth after fixed training times.

Run: .venv/bin/python benchmarks/lego_train.py [--minutes 5,15] [--size 200] [--every 1] [--set train.KEY=VALUE]
     [--preset gpu --size 800] [--data LEGO_DIR]
One fresh run per time budget (the learning-rate decay follows the budget), the given preset otherwise;
100 train views shrunk to --size, the test views rendered at the same size. 2 threads on the CPU.
The reference row is instant-ngp's published figure on a GPU (not run here).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from apps.config import resolve
from apps.pipeline import prepare_scene
from fields.eval.views import evaluate_views
from fields.neus.train import TrainConfig, load_model, pick_device, train
from sfm.io import load_scene

LEGO = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "nerf_synthetic" / "lego"
RUNS = Path(__file__).resolve().parent.parent / "runs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="5,15")
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--every", type=int, default=1, help="evaluate every n-th test view")
    ap.add_argument("--preset", default="default", help="configs/NAME.yaml (gpu: CUDA, full-size images)")
    ap.add_argument("--data", type=Path, default=LEGO, help="the NeRF-synthetic lego folder")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="change a preset value, as on the fields command line")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"skipped: {args.data} is absent")
    torch.set_num_threads(2)
    cfg = resolve(args.preset, args.overrides)
    device = pick_device(cfg["train"]["device"])
    label = f"fields NeuS ({device.type.upper() if device.type == 'cuda' else 'CPU'})"
    rows = []
    for minutes in (float(m) for m in args.minutes.split(",")):
        run = RUNS / f"bench_lego_{minutes:g}min"
        shutil.rmtree(run, ignore_errors=True)
        scene = load_scene(args.data)
        prepare_scene(scene, cfg)
        scene.save(run)
        tcfg = replace(TrainConfig.from_dict(cfg["train"]), steps=10**7, max_image_size=args.size,
                       time_budget_s=60.0 * minutes)
        t0 = time.time()
        ckpt = train(scene, tcfg, run, log=lambda *a: None)
        wall = time.time() - t0
        model, _, steps = load_model(ckpt, str(device))
        views = scene.held_out_views()[:: args.every]
        rep = evaluate_views(model, scene, views, args.size).to_dict()
        rows.append((minutes, steps, wall, len(views), rep))
    print(f"lego, {len(scene.registered()) - len(scene.held_out_views())} train views at {args.size} px, "
          f"torch {torch.__version__}, "
          + (torch.cuda.get_device_name(device) if device.type == "cuda" else "2 threads")
          + f", preset {args.preset}" + (f", {' '.join(args.overrides)}" if args.overrides else ""))
    print(f"{'method':28s} {'budget':>7s} {'steps':>7s} {'wall s':>7s} {'views':>6s} {'PSNR':>6s} {'SSIM':>6s} {'depth %':>8s}")
    for minutes, steps, wall, n, rep in rows:
        depth = f"{100 * rep['depth_rel']:8.2f}" if rep["depth_rel"] is not None else f"{'-':>8s}"
        print(f"{label:28s} {minutes:5g} m {steps:7d} {wall:7.0f} {n:6d} {rep['psnr']:6.2f} "
              f"{rep['ssim']:6.3f} {depth}")
    print(f"{'instant-ngp (GPU, published)':28s} {5:5g} m {'-':>7s} {'-':>7s} {'-':>6s} {33.0:6.2f} {'-':>6s} {'-':>8s}")


if __name__ == "__main__":
    main()
