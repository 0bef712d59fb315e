"""Where one training step's time goes, and one rendered frame's: a table per scene, by kind of work.

Run: .venv/bin/python benchmarks/profile_step.py [--scenes demo,lego] [--warm 300] [--steps 10]
Each scene is trained for --warm steps (default preset, into runs/profile_<scene>, reused when there),
then --steps training steps run under torch.profiler, then one frame is rendered with each renderer.
Time is attributed by operator (self time on the main thread): the hash-grid kernels (forward,
backward, the Eikonal term's double backward), the MLPs' matrix products, activations, occupancy
sampling, the optimiser, other tensor operations; what the operators do not cover is Python and
dispatch overhead. GFLOP/s counts the matrix products' FLOPs (torch.profiler's count) against the
machine's own sgemm rate. 2 threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SCENES = {"demo": ROOT / "assets" / "demo" / "images", "lego": DATA / "nerf_synthetic" / "lego"}

# (category, operator-name prefixes), first match wins
CATEGORIES = [
    ("hash encoding with Jacobian, backward (one scatter)", ("HashGridJacobianFunctionBackward",)),
    ("hash encoding with Jacobian, forward", ("HashGridJacobianFunction",)),
    ("hash encoding, forward", ("HashGridFunction",)),
    ("hash encoding, double backward (Eikonal)", ("HashGridBackwardBackward",)),
    ("hash encoding, backward", ("HashGridBackward",)),
    ("SDF decoder, fused elementwise passes", ("SoftplusSDFDecoder",)),
    ("MLP matrix products", ("aten::mm", "aten::addmm", "aten::bmm")),
    ("activations (+ backward)", ("aten::softplus", "aten::relu", "aten::threshold", "aten::sigmoid", "aten::exp",
                                  "aten::log", "aten::clamp", "aten::abs", "aten::rsub")),
    ("occupancy and sampling", ("OccupancyGrid", "aten::grid_sampler", "aten::searchsorted", "aten::sort", "aten::linspace")),
    ("optimiser", ("aten::_fused_adam", "Optimizer")),
    ("gathers, scatters, copies", ("aten::index", "aten::copy_", "aten::cat", "aten::gather", "aten::nonzero",
                                   "aten::masked", "aten::zeros", "aten::fill_", "aten::empty", "aten::to",
                                   "aten::_to_copy", "aten::clone", "aten::contiguous")),
]


def category(name: str) -> str:
    for cat, prefixes in CATEGORIES:
        if name.startswith(prefixes):
            return cat
    return "other tensor operations"


def sgemm_gflops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 2048**3 / best / 1e9


def attribute(prof, wall: float, n: int) -> tuple[dict[str, float], float]:
    """Per category: ms per iteration (self time of the operators); and GFLOP counted per iteration."""
    out: dict[str, float] = {}
    flops = 0.0
    for e in prof.key_averages():
        if e.key.startswith(("ProfilerStep", "train step", "render frame")):
            continue
        out[category(e.key)] = out.get(category(e.key), 0.0) + e.self_cpu_time_total / 1e3 / n
        flops += (e.flops or 0) / n
    out["Python and dispatch overhead"] = max(wall * 1e3 / n - sum(out.values()), 0.0)
    return out, flops / 1e9


def print_table(title: str, parts: dict[str, float], wall_ms: float, extra: list[str]) -> None:
    print(f"\n{title}\n")
    print("| where | ms | share |")
    print("|---|---|---|")
    for k, v in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v:.1f} | {100 * v / wall_ms:.0f} % |")
    print(f"| **total (wall)** | **{wall_ms:.1f}** | |")
    for line in extra:
        print(f"- {line}")


def prepare(name: str, warm: int):
    """The scene's run folder trained for `warm` steps: (scene, model, optimiser, config, run)."""
    from apps.config import resolve
    from apps.pipeline import prepare_scene, run_sfm
    from fields.neus.train import TrainConfig, load_model, optimiser, train
    from fields.scene import Scene
    from sfm.io import load_scene

    run = ROOT / "runs" / f"profile_{name}"
    cfg = resolve("default", [])
    if not (run / "scene.json").is_file():
        if name == "demo":  # the demo from its photos, as `make demo` does
            run_sfm(SCENES[name], run, cfg)
        else:
            scene = load_scene(SCENES[name])
            prepare_scene(scene, cfg)
            scene.save(run)
    scene = Scene.load(run)
    tcfg = replace(TrainConfig.from_dict(cfg["train"]), steps=warm)
    ckpt = train(scene, tcfg, run, log=lambda *a: None)
    model, tcfg, _ = load_model(ckpt)
    opt = optimiser(model, tcfg)
    opt.load_state_dict(torch.load(ckpt, weights_only=True)["optimizer"])
    return scene, model, opt, tcfg


def profile_training(name: str, scene, model, opt, cfg, steps: int, peak: float) -> None:
    from fields.neus.train import anchor_points, ray_bank, train_step, training_grid

    views = scene.train_views()
    bank = ray_bank(scene, views, cfg.max_image_size, cfg.background)
    anchors = anchor_points(scene, views)
    foreground = bank.foreground() if cfg.foreground_share > 0 else None
    gen = torch.Generator().manual_seed(0)
    device = torch.device("cpu")
    model.sdf.set_active_levels(10**6)
    t0 = time.perf_counter()
    grid = training_grid(model, cfg, device)
    rebuild = time.perf_counter() - t0
    for k in range(2):
        train_step(model, opt, bank, foreground, anchors, grid, cfg, gen, cfg.steps + k, device)
    samples = 0
    with torch.profiler.profile(with_flops=True) as prof:
        t0 = time.perf_counter()
        for k in range(steps):
            _, _, out = train_step(model, opt, bank, foreground, anchors, grid, cfg, gen, cfg.steps + k, device)
            samples += out.points.shape[0]
        wall = time.perf_counter() - t0
    parts, gflop = attribute(prof, wall, steps)
    parts["occupancy grid rebuild (every 16 steps)"] = rebuild * 1e3 / max(cfg.occupancy_every, 1)
    step_ms = wall * 1e3 / steps + parts["occupancy grid rebuild (every 16 steps)"]
    print_table(f"### {name}: one training step ({cfg.rays_per_batch} rays, {cfg.n_samples} sections per ray)",
                parts, step_ms, [
                    f"{cfg.rays_per_batch / step_ms * 1e3:,.0f} rays/s; {samples / steps / cfg.rays_per_batch:.1f} "
                    f"samples per ray went through the networks (of {cfg.n_samples})",
                    f"matrix products: {gflop:.2f} GFLOP per step, {gflop / step_ms * 1e3:.1f} GFLOP/s, "
                    f"{100 * gflop / step_ms * 1e3 / peak:.0f} % of this machine's sgemm ({peak:.0f} GFLOP/s)"])


def profile_frame(name: str, scene, model, cfg, peak: float) -> None:
    from fields.neus.occupancy_grid import OccupancyGrid
    from fields.neus.render_view import render_image

    view = (scene.held_out_views() or scene.train_views())[0]
    _, cam = scene.image(view, cfg.max_image_size)
    R, t = scene.normalised_pose(view)
    with torch.no_grad():
        grid = OccupancyGrid.from_sdf(model.sdf.sdf, 64)
        for method in ("volume", "traced"):
            render_image(model, cam, R, t, 128, grid=grid, method=method)
            with torch.profiler.profile(with_flops=True) as prof:
                t0 = time.perf_counter()
                render_image(model, cam, R, t, 128, grid=grid, method=method)
                wall = time.perf_counter() - t0
            parts, gflop = attribute(prof, wall, 1)
            rays = cam.width * cam.height
            print_table(f"### {name}: one {cam.width} x {cam.height} frame, {method} renderer (128 sections per ray "
                        "where volume rendering runs)", parts, wall * 1e3,
                        [f"{rays / wall:,.0f} rays/s; matrix products {gflop / wall:.1f} GFLOP/s "
                         f"({100 * gflop / wall / peak:.0f} % of sgemm)"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", default="demo,lego")
    ap.add_argument("--warm", type=int, default=300, help="training steps before profiling")
    ap.add_argument("--steps", type=int, default=10, help="training steps profiled")
    args = ap.parse_args()
    torch.set_num_threads(2)
    peak = sgemm_gflops()
    print(f"sgemm 2048 x 2048, 2 threads: {peak:.0f} GFLOP/s; torch {torch.__version__}")
    for name in args.scenes.split(","):
        if not SCENES[name].exists():
            print(f"\n{name}: skipped, {SCENES[name]} is absent", file=sys.stderr)
            continue
        scene, model, opt, cfg = prepare(name, args.warm)
        profile_training(name, scene, model, opt, cfg, args.steps, peak)
        profile_frame(name, scene, model, cfg, peak)


if __name__ == "__main__":
    main()
