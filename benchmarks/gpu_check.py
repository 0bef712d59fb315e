"""One-shot GPU check: the GPU tests, the hash-grid kernels' throughput against the PyTorch path, lego at
800 px trained for 5 minutes, and whether tinycudann imports; one table at the end.

Run on a CUDA machine: bash benchmarks/gpu_check.sh [--data LEGO] (at most about 8 minutes on one
H100). `--dry-run` runs every part at toy sizes on whatever is here (the CPU, Triton's interpreter),
to check the script itself. `--prepare DIR` copies lego's train split and every 5th test view into DIR
(about 46 MB), a folder small enough to travel to a GPU machine beside the working tree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEGO = ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"
TESTS = ["tests/fields/encodings/test_hash_grid_triton.py", "tests/fields/encodings/test_hash_grid.py",
         "tests/fields/neus/test_compositing_triton.py", "tests/fields/neus/test_rendering.py",
         "tests/fields/neus/test_traced_render.py"]


def prepare(dst: Path) -> None:
    """lego's train split and every 5th test view, with their transforms, into dst."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(LEGO / "train", dst / "train", dirs_exist_ok=True)
    shutil.copy(LEGO / "transforms_train.json", dst)
    test = json.loads((LEGO / "transforms_test.json").read_text())
    test["frames"] = test["frames"][::5]
    (dst / "test").mkdir(exist_ok=True)
    for f in test["frames"]:
        for p in LEGO.glob(f["file_path"].removeprefix("./") + "*"):
            shutil.copy(p, dst / "test" / p.name)
    (dst / "transforms_test.json").write_text(json.dumps(test))


def environment() -> list[tuple[str, str]]:
    import torch

    rows = [("torch", torch.__version__),
            ("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")]
    try:
        import triton

        rows.append(("triton", triton.__version__))
    except ImportError as exc:
        rows.append(("triton", f"not importable ({exc})"))
    try:
        import tinycudann  # noqa: F401

        rows.append(("tinycudann", "imports"))
    except Exception as exc:  # not installed, or built for another CUDA
        rows.append(("tinycudann", f"does not import ({type(exc).__name__}: {str(exc)[:60]})"))
    return rows


def gpu_tests(dry: bool) -> list[tuple[str, str]]:
    env = dict(os.environ)
    if dry:
        env["TRITON_INTERPRET"] = "1"
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    last = (res.stdout.strip().splitlines() or ["no output"])[-1]
    return [("GPU tests (hash-grid and compositing kernels, rendering)", f"{last} ({time.time() - t0:.0f} s)")]


def rate(fn, n_points: int, device: str, repeats: int) -> float:
    """Points per second of fn (best of repeats, after one warm-up)."""
    import torch

    fn()
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return n_points / best


def kernel_throughput(dry: bool) -> list[tuple[str, str]]:
    import torch

    from fields.encodings.hash_grid import HashGrid

    device = "cuda" if torch.cuda.is_available() else "cpu"
    n, levels = (2**10, 4) if dry else (2**20, 16)
    enc = HashGrid(dim=3, n_levels=levels, n_features=2, log2_hashmap_size=19, base_resolution=16,
                   finest_resolution=2048).to(device)
    enc.use_tcnn = False
    x = torch.rand(n, 3, device=device)
    head = torch.randn(enc.out_dim, device=device)

    def passes(encode):
        def fwd():
            with torch.no_grad():
                encode(x)

        def fwd_bwd():
            xr = x.clone().requires_grad_(True)
            torch.autograd.grad((encode(xr) * head).sum(), (xr, enc.params))

        def eikonal():
            xr = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad((encode(xr) * head).sum(), xr, create_graph=True)
            torch.autograd.grad(((g.norm(dim=-1) - 1) ** 2).mean(), enc.params)

        return {"forward": fwd, "forward + backward": fwd_bwd, "forward + Eikonal double backward": eikonal}

    rows = []
    enc.use_triton = True
    kernels = passes(enc)
    reference = passes(lambda v: enc.reference(v, enc.params))
    for name in kernels:
        ours = rate(kernels[name], n, device, 1 if dry else 5)
        ref = rate(reference[name], n, device, 1 if dry else 5)
        rows.append((f"hash grid {name} ({levels} levels, {n:,} points)",
                     f"Triton {ours:,.0f} points/s, PyTorch {ref:,.0f} points/s ({ours / ref:.2f}x)"))
    return rows


def lego(dry: bool, data: Path) -> list[tuple[str, str]]:
    if not data.is_dir():
        return [("lego", f"skipped: {data} is absent (benchmarks/gpu_check.py --prepare DIR, then --data DIR)")]
    args = (["--minutes", "0.05", "--size", "50", "--every", "5"] if dry else
            ["--minutes", "5", "--size", "800", "--preset", "gpu", "--every", "1"])
    t0 = time.time()
    res = subprocess.run([sys.executable, "benchmarks/lego_train.py", *args, "--data", str(data)], cwd=ROOT,
                         capture_output=True, text=True)
    if res.returncode:
        return [("lego", f"failed: {(res.stderr.strip().splitlines() or ['?'])[-1][:120]}")]
    row = next((ln for ln in res.stdout.splitlines() if ln.startswith("fields NeuS")), "")
    m = re.search(r"m\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)", row)
    if not m:
        return [("lego", f"no result line in: {res.stdout[-200:]}")]
    steps, wall, views, psnr, ssim = int(m[1]), float(m[2]), int(m[3]), float(m[4]), float(m[5])
    from apps.config import resolve

    rays = resolve("default" if dry else "gpu", [])["train"]["rays_per_batch"]
    label = "lego, 50 px, 3 s, default preset (dry run)" if dry else "lego, 800 px, 5 min, gpu preset"
    return [(label, f"PSNR {psnr:.2f} dB, SSIM {ssim:.3f} on {views} views; {steps} steps, "
                    f"about {steps * rays / max(wall, 1e-9):,.0f} rays/s ({time.time() - t0:.0f} s in all)")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="toy sizes on any machine, to check the script")
    ap.add_argument("--data", type=Path, default=LEGO, help="the lego folder (or a --prepare copy)")
    ap.add_argument("--prepare", type=Path, metavar="DIR", help="copy a travelling subset of lego into DIR and stop")
    args = ap.parse_args()
    if args.prepare:
        return prepare(args.prepare)
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"
    rows = environment()
    for part in (gpu_tests, kernel_throughput):
        try:
            rows += part(args.dry_run)
        except Exception as exc:  # one failing part must not hide the others
            rows.append((part.__name__, f"failed: {type(exc).__name__}: {str(exc)[:120]}"))
    rows += lego(args.dry_run, args.data)
    print("\n| check | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
