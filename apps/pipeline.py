"""The stages chained: SfM -> normalisation -> training -> export, each skipped when its outputs exist.

A run folder holds: config.yaml, scene.json + points.npz (the Scene), sparse/0 (COLMAP model),
transforms.json, sparse.ply, sfm/ (database and mapper output), checkpoints/field.pt, mesh.ply,
video.mp4 (+ video_depth.mp4, video_normal.mp4, camera_path.json), stages.json (what finished and how long it took) and log.txt.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

from apps.config import SFM_BACKENDS, options
from fields.errors import FieldsError
from fields.eval.views import evaluate_views
from fields.export.mesh import export_mesh
from fields.export.video import (
    depth_frames,
    even_camera,
    normal_frame,
    orbit_poses,
    write_video,
)
from fields.geometry.normalisation import fit_unit_sphere
from fields.io_utils import write_json
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.render_view import render_image
from fields.neus.rendering import NeuSModel
from fields.neus.train import TrainConfig, load_model, train
from fields.scene import Camera, Scene
from sfm.io import load_scene, write_colmap, write_transforms
from sfm.io.camera_path import CameraPose, read_camera_path, write_camera_path
from sfm.io.image_folder import read_image_folder

log = logging.getLogger("fields")


class _Console(logging.StreamHandler):
    """The console: whatever sys.stderr is when a line is written (a caller may have replaced it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _LogFile(logging.FileHandler):
    """run/log.txt. A line that cannot be written (a full disk) is dropped without logging's own traceback:
    the console has shown it, and the command reports the full disk in one line where it matters."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def setup_logging(run: Path) -> None:
    """Log to the console and to run/log.txt."""
    run.mkdir(parents=True, exist_ok=True)
    log.setLevel(logging.INFO)
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    console = _Console()
    console.setFormatter(logging.Formatter("%(message)s"))
    file = _LogFile(run / "log.txt")
    file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(console)
    log.addHandler(file)
    log.propagate = False


class Stages:
    """stages.json: finished stages with their wall times, so a rerun skips them."""

    def __init__(self, run: Path) -> None:
        self.path = run / "stages.json"
        self.done: dict[str, float] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def finished(self, name: str) -> bool:
        return name in self.done

    def mark(self, name: str, seconds: float) -> None:
        self.done[name] = round(seconds, 2)
        write_json(self.path, self.done)


def write_scene_outputs(scene: Scene, run: Path) -> None:
    """The Scene and its interchange formats: scene.json, COLMAP sparse/0, transforms.json, sparse.ply."""
    scene.save(run)
    write_colmap(scene, run / "sparse" / "0")
    ply = None
    if len(scene.points):
        trimesh.PointCloud(scene.points.xyz, colors=scene.points.rgb).export(run / "sparse.ply")
        ply = "sparse.ply"
    write_transforms(scene, run / "transforms.json", ply_name=ply)


def read_inputs(images: Path, cfg: dict) -> Scene:
    """The photos to reconstruct (sfm.fov for those without EXIF: see read_image_folder); fails before
    anything is written when there are too few."""
    inputs = read_image_folder(images, float(cfg["sfm"]["fov"]))
    if len(inputs.views) < 3:
        raise FieldsError(f"{images}: found {len(inputs.views)} images; need at least 3")
    return inputs


def run_sfm(images: Path, run: Path, cfg: dict, viewer=None, inputs: Scene | None = None) -> Scene:
    """Poses for a folder of images (neural Level-S2fM, pycolmap's incremental or global mapper), normalised,
    written into run with sfm_report.json (per image: registered or why not, observations, error).
    A viewer (apps.viewer.Viewer) is shown the model as it grows. inputs: the folder already read."""
    import pycolmap
    from rich.console import Console

    from sfm.colmap import classical_sfm
    from sfm.frontend.extract import FrontEndOptions
    from sfm.neural.mapper import neural_sfm
    from sfm.neural.options import NeuralSfMOptions
    from sfm.report import name_list, view_rows, write_report

    backend = cfg["sfm"]["backend"]
    if backend not in SFM_BACKENDS:
        raise FieldsError(f"unknown SfM backend {backend!r} ({', '.join(SFM_BACKENDS)})")
    if inputs is None:
        inputs = read_inputs(images, cfg)
    if viewer:
        viewer.show_inputs(inputs)
    pycolmap.logging.minloglevel = 2
    opts = options(FrontEndOptions, cfg["sfm"])
    t0, reasons = time.time(), {}
    if backend == "neural":
        log.info(f"sfm: {len(inputs.views)} images, neural incremental SfM on the SDF level set")
        with Console(stderr=True).status("sfm: SIFT, matching, neural incremental SfM") as status:
            progress = lambda n, total: status.update(f"sfm: registered {n}/{total} views")  # noqa: E731
            neural = options(NeuralSfMOptions, cfg["sfm"])
            scene, reports = neural_sfm(inputs, Path(images).resolve(), run / "sfm", opts, neural, progress,
                                        viewer.sfm_update if viewer else None)
        reasons = {i: r.reason for i, r in reports.items() if not r.registered}
    else:
        mapper = "incremental" if backend == "colmap" else "global"
        log.info(f"sfm: {len(inputs.views)} images, pycolmap {mapper} mapping")
        with Console(stderr=True).status(f"sfm: SIFT, matching, {mapper} mapping"):
            scene = classical_sfm(inputs, Path(images).resolve(), run / "sfm", opts, mapper)
    write_report(run / "sfm_report.json", backend, time.time() - t0, view_rows(scene, reasons))
    missing = [v.name for v in scene.views if not v.registered]
    log.info(f"sfm: registered {len(scene.registered())}/{len(scene.views)} views, {len(scene.points)} points"
             + (f"; not registered: {', '.join(missing)}" if missing else ""))
    if len(scene.registered()) < 2:
        raise FieldsError(f"{images}: SfM registered fewer than 2 views; not registered: {name_list(missing)}; "
                          "the photos may not overlap")
    prepare_scene(scene, cfg)
    write_scene_outputs(scene, run)
    if viewer:
        viewer.show_scene(scene, f"sfm: registered {len(scene.registered())}/{len(scene.views)} views")
    return scene


def prepare_scene(scene: Scene, cfg: dict) -> None:
    """Normalise into the unit sphere and hold out test views (when the data has no test split)."""
    n = cfg["normalisation"]
    scene.to_normalised = fit_unit_sphere(scene, n["target_radius"], n["percentile"])
    held = scene.hold_out(cfg["train"]["holdout_every"])
    if held:
        log.info(f"held out for evaluation: {len(held)} views ({', '.join(scene.views[i].name for i in held[:4])}"
                 + (", ..." if len(held) > 4 else "") + ")")


def run_training(scene: Scene, run: Path, cfg: dict, viewer=None) -> Path:
    """Train the field; a viewer follows along (plots, renders, meshes, pause)."""
    tcfg = options(TrainConfig, cfg["train"])
    ckpt = train(scene, tcfg, run, log=log.info, listener=viewer.training_listener(scene) if viewer else None)
    if viewer:
        viewer.training_done()
    return ckpt


def trained_field(run: Path, scene: Scene | None = None) -> tuple[Scene, NeuSModel, TrainConfig]:
    """The run's scene (unless given) and trained field, loaded once for every stage after training."""
    model, tcfg, _ = load_model(run / "checkpoints" / "field.pt")
    return scene or Scene.load(run), model, tcfg


def run_export(run: Path, cfg: dict, stages: Stages, field: tuple | None = None) -> None:
    """The mesh and the videos, where not yet written; field: trained_field(run) when already loaded."""
    if stages.finished("mesh") and stages.finished("video"):
        return
    scene, model, _ = field or trained_field(run)
    e = cfg["export"]
    if not stages.finished("mesh"):
        t0 = time.time()
        mesh = export_mesh(model, scene, run / f"mesh.{e['mesh_format']}", e["mesh_resolution"],
                           e["largest_component"], e["cull_unseen"], e["decimate_faces"])
        log.info(f"mesh: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces -> {run / ('mesh.' + e['mesh_format'])}")
        stages.mark("mesh", time.time() - t0)
    if not stages.finished("video"):
        t0 = time.time()
        export_video(model, scene, run / "video.mp4", "orbit", e["video_frames"], e["video_size"], e["video_fps"],
                     e["renderer"])
        log.info(f"video: {e['video_frames']} frames -> {run / 'video.mp4'}")
        stages.mark("video", time.time() - t0)


def run_eval(run: Path, stages: Stages, renderer: str, field: tuple | None = None) -> None:
    """PSNR / SSIM on the held-out views (every 8th photo, or the data's test split) into
    view_metrics.json; `fields eval views` adds depth and surface scores where there is ground truth."""
    if stages.finished("eval"):
        return
    t0 = time.time()
    scene, model, tcfg = field or trained_field(run)
    views = scene.held_out_views()
    if views:
        d = evaluate_views(model, scene, views, tcfg.max_image_size, renderer=renderer).to_dict()
        write_json(run / "view_metrics.json", d)
        log.info(f"eval: {d['views']} held-out views, PSNR {d['psnr']:.2f} dB, SSIM {d['ssim']:.3f}")
    stages.mark("eval", time.time() - t0)


def video_poses(scene: Scene, path: str, frames: int, size: int | None) -> list[CameraPose]:
    """(camera, R, t) in the normalised frame: an orbit (the first view's camera), or the keyframes of
    a camera-path file (nerfstudio's format, poses in the input frame, its render size), each camera
    shrunk to at most `size` px when given, with even sides."""
    if path == "orbit":
        c = scene.camera_of(scene.registered()[0])
        cam = Camera.from_focal(c.width, c.height, c.K[1, 1], c.K[1, 1])  # centred, square pixels, no distortion
        cam = even_camera(cam, size or max(cam.width, cam.height))
        return [(cam, R, t) for R, t in orbit_poses(scene, frames)]
    return [(even_camera(c, size or max(c.width, c.height)), *scene.to_normalised.transform_pose(R, t))
            for c, R, t in read_camera_path(Path(path))]


def export_video(model, scene: Scene, out: Path, path: str, frames: int, size: int | None, fps: int,
                 renderer: str) -> list[Path]:
    """RGB, depth and normal videos (out, out_depth, out_normal) along the path; an orbit is also
    written as camera_path.json (input frame) beside them, to edit and render again with --path."""
    from rich.progress import track

    poses = video_poses(scene, path, frames, size)
    grid = OccupancyGrid.from_sdf(model.sdf.sdf, 64, next(model.parameters()).device)
    renders = [render_image(model, cam, R, t, grid=grid, method=renderer) for cam, R, t in track(poses, description="video")]
    outs = [out, out.with_name(out.stem + "_depth.mp4"), out.with_name(out.stem + "_normal.mp4")]
    write_video([r.rgb for r in renders], outs[0], fps)
    write_video(depth_frames(renders), outs[1], fps)
    write_video([normal_frame(r, R) for r, (_, R, _) in zip(renders, poses)], outs[2], fps)
    if path == "orbit":
        back = scene.to_normalised.inverse()
        write_camera_path([(c, *back.transform_pose(R, t)) for c, R, t in poses], out.with_name("camera_path.json"), fps)
    return outs


def reconstruct(images: Path, run: Path, cfg: dict, viewer=None, inputs: Scene | None = None) -> dict:
    """The whole pipeline; returns the per-stage seconds. Finished stages are skipped on a rerun, which
    finds the photos in `images` when the run and its photos have moved."""
    stages = Stages(run)
    if not stages.finished("sfm"):
        t0 = time.time()
        run_sfm(images, run, cfg, viewer, inputs)
        stages.mark("sfm", time.time() - t0)
    scene = Scene.load(run, images)
    if not stages.finished("train") or not stages.finished("eval"):
        scene.require_images()
    if not stages.finished("train"):
        t0 = time.time()
        run_training(scene, run, cfg, viewer)
        stages.mark("train", time.time() - t0)
    if viewer:
        viewer.set_stage("export: mesh and video")
    field = None if all(stages.finished(s) for s in ("mesh", "video", "eval")) else trained_field(run, scene)
    run_export(run, cfg, stages, field)
    run_eval(run, stages, cfg["export"]["eval_renderer"], field)
    if viewer and (run / f"mesh.{cfg['export']['mesh_format']}").is_file():
        viewer.show_mesh(run / f"mesh.{cfg['export']['mesh_format']}")
        viewer.set_stage("finished", 1.0)
    return stages.done


def prepare_training_scene(data: Path, run: Path, cfg: dict, images: Path | None = None) -> Scene:
    """A posed Scene for `fields train`: from a run folder as it is (its photos under `images` when they
    moved), or from any readable input, normalised; written into run unless it is that run folder and
    its photos stayed where they were. Fails, before writing, when photos are missing or changed."""
    scene = load_scene(data, images=images)
    if not scene.registered():
        raise FieldsError(f"{data}: no posed views (run `fields sfm` first)")
    scene.require_images()
    if not (Path(data) / "scene.json").is_file():
        prepare_scene(scene, cfg)
        write_scene_outputs(scene, run)
    elif Path(data).resolve() != run.resolve() or images is not None:
        write_scene_outputs(scene, run)
    return scene


def space_needed(n_images: int, cfg: dict) -> int:
    """About how many bytes a reconstruction of n_images photos writes: the SfM database (keypoints,
    descriptors and matches, about 3 MB a photo), the checkpoint with its optimiser moments (twice,
    while a new one replaces the old), the mesh and the videos."""
    t, e = cfg["train"], cfg["export"]
    table = t["hash_levels"] * (1 << t["hash_log2_size"]) * 2 * 4  # float32 features, 2 per entry
    checkpoint = 2 * 3 * table  # values and Adam's two moments; old and new during a write
    mesh = 60 * e["mesh_resolution"] ** 2 * 4  # about 4 vertices per surface voxel, 60 bytes each with faces
    video = 3 * e["video_frames"] * e["video_size"] ** 2 // 10
    return 3_000_000 * n_images + checkpoint + mesh + video


def summary(run: Path, seconds: dict) -> str:
    """The closing lines: what was made and where, key figures, how long each stage took."""
    lines = [f"run folder: {run}"]
    for name in ("mesh.ply", "mesh.obj", "mesh.glb", "video.mp4", "video_depth.mp4", "video_normal.mp4",
                 "camera_path.json", "transforms.json", "sparse/0", "checkpoints/field.pt"):
        if (run / name).exists():
            lines.append(f"  {name}")
    report = run / "sfm_report.json"
    if report.is_file():
        rep = json.loads(report.read_text())
        errors = [r["error_px"] for r in rep.get("per_view", []) if r.get("registered") and r.get("error_px") is not None]
        lines.append(f"sfm ({rep.get('backend')}): registered {rep.get('registered')}/{rep.get('views')} views"
                     + (f", mean reprojection error {float(np.mean(errors)):.2f} px" if errors else ""))
    metrics = run / "view_metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        lines.append(f"held-out views: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f} ({m['views']} views)")
    lines.append("time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) +
                 f" (total {float(np.sum(list(seconds.values()))):.0f} s)")
    return "\n".join(lines)
