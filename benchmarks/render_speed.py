"""Rendering speed and fidelity: today's renderer beside a baseline commit's, on the same checkpoint.

Run: .venv/bin/python benchmarks/render_speed.py [--run runs/demo] [--baseline 0092bd6] [--frames 12]
The run is a trained run folder (`make demo` makes runs/demo). The baseline commit is checked out in
a temporary git worktree and renders in its own process first, then this tree does; never both at
once (2 cores). Two tasks, as the pipeline runs them: the orbit video (frames at export.video_size,
64 samples per ray where volume rendering runs) and the held-out evaluation (the training size, 128
samples). PSNR against the photos for the evaluation, and of each image against the baseline's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from baseline_tree import ROOT, checkout, run_python


def worker(run: Path, out: Path, frames: int, size: int) -> None:
    """Render both tasks with whichever tree is first on sys.path; images and seconds into out (npz)."""
    import torch

    torch.set_num_threads(2)
    try:  # the layout since the renovation (issue 31)
        from apps.pipeline import video_poses
        from fields.neus.occupancy_grid import OccupancyGrid
        from fields.neus.render_view import render_image
        from fields.neus.train import load_model
    except ImportError:  # the flat layout before it
        from fields.occupancy_grid import OccupancyGrid
        from fields.train import load_model
        from fields.video import render_image

        from apps.pipeline import video_poses
    from fields.scene import Scene

    scene = Scene.load(run)
    try:
        held = scene.held_out_views()
    except AttributeError:
        from fields.view_metrics import held_out_views

        held = held_out_views(scene)
    model, cfg, _ = load_model(run / "checkpoints" / "field.pt")
    result: dict[str, np.ndarray] = {}
    with torch.no_grad():
        grid = OccupancyGrid.from_sdf(model.sdf.sdf, 64)
        render_image(model, *video_poses(scene, "orbit", 1, 32)[0], grid=grid)  # warm-up
        for task, poses, n in (("video", video_poses(scene, "orbit", frames, size), 64),
                               ("eval", [(scene.image(i, cfg.max_image_size)[1], *scene.normalised_pose(i))
                                         for i in held], 128)):
            t0, imgs = time.time(), []
            for cam, R, t in poses:
                imgs.append(render_image(model, cam, R, t, n, grid=grid).rgb)
            result[f"{task}_seconds"] = np.array(time.time() - t0)
            result[f"{task}_rays"] = np.array(sum(im.shape[0] * im.shape[1] for im in imgs))
            for k, im in enumerate(imgs):
                result[f"{task}_{k}"] = im.astype(np.float32)
    np.savez(out, **result)


def run_worker(tree: Path, run: Path, out: Path, frames: int, size: int) -> dict:
    run_python(tree, [str(Path(__file__).resolve()), "--worker", str(out), "--run", str(run.resolve()),
                      "--frames", str(frames), "--size", str(size)])
    return dict(np.load(out))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, 1e-12))


def photo_psnr(run: Path, res: dict) -> float:
    """Mean PSNR of the evaluation renders against the held-out photos (as `fields eval views` scores)."""
    from fields.images import composite
    from fields.neus.radiance_field import fixed_colour
    from fields.neus.train import load_model
    from fields.scene import Scene

    scene = Scene.load(run)
    model, cfg, _ = load_model(run / "checkpoints" / "field.pt")
    vals = []
    for k, i in enumerate(scene.held_out_views()):
        img, _ = scene.image(i, cfg.max_image_size)
        vals.append(psnr(res[f"eval_{k}"], composite(img, fixed_colour(model.background) or (1.0, 1.0, 1.0))))
    return float(np.mean(vals))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "demo")
    ap.add_argument("--baseline", default="0092bd6", help="the commit to compare with")
    ap.add_argument("--frames", type=int, default=12, help="orbit frames rendered")
    ap.add_argument("--size", type=int, default=240, help="longer side of the orbit frames")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.run, args.worker, args.frames, args.size)
    if not (args.run / "checkpoints" / "field.pt").is_file():
        sys.exit(f"skipped: {args.run} holds no trained field (make demo, or --run RUN)")
    with tempfile.TemporaryDirectory() as tmp:
        with checkout(args.baseline) as base_tree:
            base = run_worker(base_tree, args.run, Path(tmp) / "base.npz", args.frames, args.size)
        ours = run_worker(ROOT, args.run, Path(tmp) / "ours.npz", args.frames, args.size)
    rows = []
    for task in ("video", "eval"):
        n = sum(1 for k in ours if k.startswith(f"{task}_") and k[len(task) + 1:].isdigit())
        agree = np.mean([psnr(ours[f"{task}_{k}"], base[f"{task}_{k}"]) for k in range(n)])
        for name, res in ((f"baseline {args.baseline}", base), ("this tree", ours)):
            rate = float(res[f"{task}_rays"]) / float(res[f"{task}_seconds"])
            rows.append({"task": task, "renderer": name, "images": n, "seconds": float(res[f"{task}_seconds"]),
                         "rays_per_s": rate, "speedup": rate / (float(base[f"{task}_rays"]) / float(base[f"{task}_seconds"])),
                         "psnr_photos": photo_psnr(args.run, res) if task == "eval" else None,
                         "psnr_vs_baseline": None if res is base else float(agree)})
    print("| task | renderer | images | seconds | rays/s | speed-up | PSNR vs photos | PSNR vs baseline image |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        fmt = lambda v, f: "-" if v is None else format(v, f)
        print(f"| {r['task']} | {r['renderer']} | {r['images']} | {r['seconds']:.1f} | {r['rays_per_s']:,.0f} | "
              f"{r['speedup']:.1f}x | {fmt(r['psnr_photos'], '.2f')} | {fmt(r['psnr_vs_baseline'], '.2f')} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
