"""Image fitting on Kodak: PSNR after 100/300/1000 steps, seconds and parameters per field, side by side.

Run: .venv/bin/python benchmarks/kodak_fit.py [--images kodim01,kodim02] [--size 256] [--steps 100,300,1000]
Fields: PE-MLP, Fourier-MLP, Fourier-MLP + CAM, hash + MLP, hash + CAM, dense grid + MLP, dense grid + RBF.
Decoder learning rate 1e-3, feature grids at 1e-2 (CAM grids 10x as in the paper); 2 threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fields.fit.fresh import fourier_sigma_maker, fresh_select
from fields.fit.image import fit_image
from fields.images import load_image, resize
from fields.nn.builder import build_field, parameter_count, resolve_spec

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "images" / "kodak"
ROWS = [("PE-MLP", "pe", False), ("Fourier-MLP", "fourier", False), ("Fourier-MLP + CAM", "fourier", True),
        ("hash + MLP", "hash", False), ("hash + CAM", "hash", True), ("dense + MLP", "dense", False),
        ("dense + RBF", "rbf", False)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="kodim01,kodim02,kodim03")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", default="100,300,1000")
    ap.add_argument("--batch", type=int, default=None, help="pixels per step (default: all)")
    ap.add_argument("--only", default="", help="comma-separated row names to run")
    ap.add_argument("--sweep", default="1,2,5,10,20,50,100", help="Fourier sigmas for the FreSh table ('' skips it)")
    ap.add_argument("--sweep-steps", type=int, default=300)
    ap.add_argument("--holdout", action="store_true",
                    help="train on every other pixel, measure on all (the Fourier-features / CAM protocol)")
    args = ap.parse_args()
    if not KODAK.is_dir():
        sys.exit(f"skipped: {KODAK} is absent")
    torch.set_num_threads(2)
    steps = tuple(int(s) for s in args.steps.split(","))
    images = []
    for name in args.images.split(","):
        img = load_image(KODAK / f"{name}.png")[..., :3]
        h, w = img.shape[:2]
        s = args.size / max(h, w)
        images.append(resize(img, (round(w * s), round(h * s))))
    rows = [r for r in ROWS if not args.only or r[0] in args.only.split(",")]
    header = f"{'field':20s} {'params':>9s} {'decoder':>8s} " + " ".join(f"{'PSNR@' + str(s):>9s} {'s@' + str(s):>7s}" for s in steps)
    protocol = "trained on 1/4 of the pixels, PSNR on all" if args.holdout else "PSNR on the fitted pixels"
    print(f"Kodak {args.images} at {args.size} px, mean over images, {protocol}, torch {torch.__version__}, 2 threads")
    print(header)
    for label, name, cam in rows:
        results = []
        for img in images:
            torch.manual_seed(0)
            field = build_field(resolve_spec(name, cam), 2, 3)
            results.append(fit_image(field, img, max(steps), lr=1e-3, batch=args.batch, report_at=steps,
                                     holdout=args.holdout))
        cells = " ".join(f"{np.mean([r.psnr_at[s][0] for r in results]):9.2f} {np.mean([r.psnr_at[s][1] for r in results]):7.1f}"
                         for s in steps)
        print(f"{label:20s} {results[0].parameters:9,d} {parameter_count(field.decoder):8,d} {cells}", flush=True)
    if args.sweep:
        fresh_table(images, [float(v) for v in args.sweep.split(",")], args.sweep_steps, args.batch)


def fresh_table(images: list[np.ndarray], sigmas: list[float], steps: int, batch: int | None) -> None:
    """Fourier-MLP PSNR for every sigma against the sigma FreSh picks before training, and FreSh's cost."""
    spec = resolve_spec("fourier")
    make = fourier_sigma_maker(spec, 2, 3)
    print(f"\nFreSh vs the sigma sweep: Fourier-MLP PSNR after {steps} steps")
    print(f"{'image':8s} " + " ".join(f"{'s=' + format(v, 'g'):>7s}" for v in sigmas) +
          f" {'best':>7s} {'FreSh':>7s} {'pick':>5s} {'FreSh s':>8s} {'1 run s':>8s}")
    for i, img in enumerate(images):
        runs = {}
        for sigma in sigmas:
            spec["encoding"]["sigma"] = sigma
            torch.manual_seed(0)
            runs[sigma] = fit_image(build_field(spec, 2, 3), img, steps, lr=1e-3, batch=batch)
        t0 = time.perf_counter()
        pick = fresh_select(img, sigmas, make).value
        fresh_s = time.perf_counter() - t0
        best = max(r.psnr for r in runs.values())
        one_run = float(np.mean([r.seconds for r in runs.values()]))
        print(f"{i:8d} " + " ".join(f"{runs[v].psnr:7.2f}" for v in sigmas) +
              f" {best:7.2f} {runs[pick].psnr:7.2f} {pick:5g} {fresh_s:8.1f} {one_run:8.1f}", flush=True)


if __name__ == "__main__":
    main()
