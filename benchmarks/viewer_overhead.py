"""Training speed with and without the live viewer: steps/s on the demo scene, in one run.

Run: .venv/bin/python benchmarks/viewer_overhead.py [--steps 400] [--preset default] [--set viewer.KEY=VALUE]
Rows: no viewer; the viewer with nobody connected; the viewer with a headless Chromium (Debian's,
driven by Playwright in a second process) connected and its camera at rest, so the viewer copies
weights every snapshot_every_s, renders from the browser's camera and refreshes the mesh within its
duty cycle. The browser runs on the same 2 cores and here its WebGL is software-rendered: the
"browser cores" column is its CPU use, which a browser on a GPU or on another machine does not
take from training. The last row runs the browser at the lowest CPU priority (nice 19). "busy" is
the wall time the viewer itself spent copying weights, rendering and meshing.
Target: <= 10 % slower than without the viewer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from apps.config import resolve
from apps.pipeline import prepare_scene
from apps.viewer import Viewer, ViewerOptions
from fields.neus.train import TrainConfig, train
from sfm.io import read_transforms

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"
BROWSER = """
import sys, time
from playwright.sync_api import sync_playwright
with sync_playwright() as pw:
    b = pw.chromium.launch(executable_path=sys.argv[2], args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
    page = b.new_page(viewport={"width": 960, "height": 640})
    page.goto(sys.argv[1])
    page.wait_for_selector("canvas", timeout=60000)
    print("connected", flush=True)
    time.sleep(3600)
"""


def browser_cpu_seconds(chromium: str) -> float:
    """User + system CPU seconds of every running Chromium process so far."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            if "chrom" not in Path(cmd).name:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def timed_training(scene, tcfg: TrainConfig, viewer: Viewer | None) -> float:
    """Steps per second of a fresh training run."""
    with tempfile.TemporaryDirectory() as tmp:
        listener = viewer.training_listener(scene) if viewer else None
        t0 = time.time()
        train(scene, tcfg, Path(tmp), log=lambda *a: None, listener=listener)
        return tcfg.steps / (time.time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("skipped: Debian's chromium is not installed")
    torch.set_num_threads(2)
    cfg = resolve(args.preset, args.overrides)
    scene = read_transforms(DEMO / "transforms.json")
    prepare_scene(scene, cfg)
    tcfg = replace(TrainConfig.from_dict(cfg["train"]), steps=args.steps, checkpoint_every=10**6)
    vopts = ViewerOptions.from_dict({**cfg["viewer"], "port": 0})
    timed_training(scene, replace(tcfg, steps=50), None)  # warm-up, not counted
    rows = [("no viewer", timed_training(scene, tcfg, None), 0.0, {})]
    viewer = Viewer(vopts)
    try:
        rows.append(("viewer, no client", timed_training(scene, tcfg, viewer), 0.0, {}))
        for label, nice in (("viewer + browser", 0), ("viewer + browser at nice 19", 19)):
            proc = subprocess.Popen([sys.executable, "-c", BROWSER, viewer.url, chromium], stdout=subprocess.PIPE,
                                    text=True, preexec_fn=lambda n=nice: os.nice(n))
            try:
                assert proc.stdout.readline().strip() == "connected", "the browser did not connect"
                time.sleep(3.0)
                before, cpu0, t0 = dict(viewer.counts), browser_cpu_seconds(chromium), time.time()
                rate = timed_training(scene, tcfg, viewer)
                share = (browser_cpu_seconds(chromium) - cpu0) / (time.time() - t0)
                rows.append((label, rate, share, {k: viewer.counts[k] - before[k] for k in before}))
            finally:
                proc.kill()
                proc.wait()
            time.sleep(2.0)
    finally:
        viewer.close()
    print(f"demo, {args.steps} training steps, preset {args.preset}, torch {torch.__version__}, 2 threads"
          + (f", {' '.join(args.overrides)}" if args.overrides else ""))
    print(f"{'configuration':30s} {'steps/s':>8s} {'slower %':>9s} {'browser cores':>14s}  viewer work "
          f"(busy: copying weights, rendering, meshing; wall seconds)")
    for name, rate, share, did in rows:
        work = ", ".join(f"{v:.1f} s busy" if k == "busy_s" else f"{v} {k}" for k, v in did.items())
        print(f"{name:30s} {rate:8.2f} {100.0 * (1.0 - rate / rows[0][1]):9.1f} {share:14.2f}  {work}")


if __name__ == "__main__":
    main()
