"""Training throughput and held-out PSNR at equal steps: this tree beside a baseline commit, each with its
own default preset, on the same posed scene.

Run: .venv/bin/python benchmarks/train_speed.py [--scene runs/demo] [--baseline 0092bd6] [--steps 1500]
The scene is a run folder with poses (`fields sfm assets/demo/images -o DIR` makes one; default: the
demo, posed here first if runs/train_speed_scene is absent). Each tree trains a copy of it with
`fields train --no-viewer` in its own process, one after the other (never both at once: 2 cores);
the baseline runs from a temporary git worktree. Both checkpoints are then scored by this tree's
evaluation with the volume renderer (128 sections per ray), so only the training differs.

The machine's speed drifts (a shared virtual machine: the same code ran 2x slower an hour apart), so
the whole runs' rates, taken one after the other, are not a fair ratio. `--rounds K` then times
--chunk more steps from each side's final checkpoint, alternating baseline and ours K times; the
median of the K paired ratios is the speed-up printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from baseline_tree import ROOT, checkout, run_python


def fields_train(tree: Path, run: Path, steps: int) -> None:
    """`fields train RUN` to `steps` steps (resuming from its checkpoint), with `tree`'s code."""
    run_python(tree, ["-c", "import sys; from apps.cli import main; sys.exit(main())", "train", str(run), "-o", str(run),
                      "--no-viewer", "--set", f"train.steps={steps}"], stdout=subprocess.DEVNULL)


def train_in(tree: Path, scene: Path, run: Path, steps: int) -> float:
    """Wall seconds of `fields train` from `tree` on a copy of `scene` in `run`."""
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(scene, run, ignore=shutil.ignore_patterns("checkpoints", "stages.json", "view_metrics.json"))
    t0 = time.time()
    fields_train(tree, run, steps)
    return time.time() - t0


def chunk_rate(tree: Path, run: Path, steps: int, chunk: int) -> float:
    """Rays per second of `chunk` more steps from the run's checkpoint (the loop's own seconds)."""
    import torch

    before = trained_seconds(run)
    fields_train(tree, run, steps + chunk)
    ck = torch.load(run / "checkpoints" / "field.pt", weights_only=True)
    rays = int(ck["config"]["rays_per_batch"]) * (int(ck["step"]) - steps)
    return rays / (float(ck["elapsed"]) - before)


def trained_seconds(run: Path) -> float:
    """The training loop's own seconds, from the checkpoint (start-up and ray set-up excluded)."""
    import torch

    return float(torch.load(run / "checkpoints" / "field.pt", weights_only=True).get("elapsed", 0.0))


def score(run: Path) -> dict:
    from fields.eval.views import evaluate_views
    from fields.neus.train import load_model
    from fields.scene import Scene

    scene = Scene.load(run)
    model, cfg, steps = load_model(run / "checkpoints" / "field.pt")
    d = evaluate_views(model, scene, scene.held_out_views(), cfg.max_image_size, renderer="volume").to_dict()
    return {"steps": steps, "n_samples": cfg.n_samples, "rays_per_batch": cfg.rays_per_batch, "psnr": d["psnr"],
            "ssim": d["ssim"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=ROOT / "runs" / "train_speed_scene")
    ap.add_argument("--baseline", default="0092bd6")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--only", choices=("baseline", "ours"), help="train one side only")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds after the runs")
    ap.add_argument("--chunk", type=int, default=100, help="steps timed per side and round")
    ap.add_argument("--skip-runs", choices=("baseline", "all"),
                    help="reuse the baseline's run (or both) a previous call left beside the scene")
    args = ap.parse_args()
    if not (args.scene / "scene.json").is_file():
        subprocess.run([sys.executable, "-m", "apps.cli", "sfm", str(ROOT / "assets" / "demo" / "images"), "-o",
                        str(args.scene), "--no-viewer"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    # beside the scene: a run folder stores its image paths relative to itself, so copies stay at its depth
    out = args.scene.parent
    rows = []
    ratios = []
    with checkout(args.baseline) as base_tree:
        trees = {"baseline": base_tree, "ours": ROOT}
        for side, tree in trees.items():
            if args.only and side != args.only:
                continue
            run = out / f"train_speed_{side}"
            reuse = args.skip_runs == "all" or (args.skip_runs == "baseline" and side == "baseline")
            wall = 0.0 if reuse else train_in(tree, args.scene, run, args.steps)
            loop, scored = trained_seconds(run), score(run)
            rows.append({"side": f"baseline {args.baseline}" if side == "baseline" else "this tree", "wall_s": wall,
                         "train_s": loop, "rays_per_s": args.steps * scored["rays_per_batch"] / loop, **scored})
        for k in range(args.rounds if not args.only else 0):
            # each chunk starts from a copy of the final checkpoint, so every round times the same state
            rates = {}
            for side, tree in trees.items():
                run, probe = out / f"train_speed_{side}", out / f"train_speed_{side}_chunk"
                shutil.rmtree(probe, ignore_errors=True)
                shutil.copytree(run, probe)
                rates[side] = chunk_rate(tree, probe, args.steps, args.chunk)
                shutil.rmtree(probe)
            ratios.append(rates["ours"] / rates["baseline"])
            print(f"round {k + 1}: baseline {rates['baseline']:,.0f} rays/s, ours {rates['ours']:,.0f} rays/s, "
                  f"ratio {ratios[-1]:.2f}", flush=True)
    if ratios:
        ratios.sort()
        print(f"interleaved rounds ({args.chunk} steps from the final checkpoints): speed-up median "
              f"{ratios[len(ratios) // 2]:.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f})")
    base = rows[0]["rays_per_s"] if rows and rows[0]["side"].startswith("baseline") else None
    print("| code | sections/ray | steps | train s | rays/s | speed-up | held-out PSNR | SSIM |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        up = f"{r['rays_per_s'] / base:.2f}x" if base else "-"
        print(f"| {r['side']} | {r['n_samples']} | {r['steps']} | {r['train_s']:.0f} | {r['rays_per_s']:,.0f} | {up} | "
              f"{r['psnr']:.2f} | {r['ssim']:.4f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
