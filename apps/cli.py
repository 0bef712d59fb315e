"""The `fields` command."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

from apps.evaluate import cmd_eval, cmd_eval_views
from apps.fit import cmd_fit_image, cmd_fit_sdf
from fields.errors import FieldsError


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="auto",
                   help="preset name in configs/ or a YAML path (default auto: gpu with CUDA, else default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value (repeatable), e.g. --set train.steps=3000")


def _add_wait_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true",
                   help="when another command is writing to the run folder, wait for it instead of stopping")


def _add_images_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="where the run's photos are now, when they moved (default: where the run recorded them)")


def _port(text: str) -> int:
    """--port as the viewer.port setting allows it (0, any free port, to 65535); argparse prints the error in
    one line and exits with 2."""
    from apps.viewer.options import ViewerOptions
    from fields.settings import valid_value

    try:
        return valid_value(ViewerOptions, "port", text, "the port")  # type: ignore[return-value]
    except FieldsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_viewer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--viewer", action=argparse.BooleanOptionalAction, default=None,
                   help="live web viewer (default: on, see viewer.enabled)")
    p.add_argument("--host", help="viewer address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, help="viewer port (default 7007; the next free one when busy)")


@contextlib.contextmanager
def _viewer(args: argparse.Namespace, cfg: dict, run: Path | None):
    """The live viewer for a command (None when off), closed when the command ends."""
    from apps.viewer import start_viewer

    viewer = start_viewer(cfg, run, args.viewer, args.host, args.port, required=args.func is cmd_view)
    try:
        yield viewer
    finally:
        if viewer is not None:
            viewer.close()


def _settings(args: argparse.Namespace) -> dict:
    """The preset with the command line's overrides."""
    from apps import config

    overrides = list(args.overrides)
    if getattr(args, "backend", None):
        overrides.append(f"sfm.backend={args.backend}")
    return config.resolve(args.preset, overrides)


def _config(args: argparse.Namespace, run: Path, cfg: dict | None = None) -> dict:
    """The settings (resolved from args unless given), saved as run/config.yaml."""
    from apps import config

    cfg = _settings(args) if cfg is None else cfg
    run.mkdir(parents=True, exist_ok=True)
    config.save(cfg, run / "config.yaml")
    return cfg


def _locked(args: argparse.Namespace, run: Path):
    """The run folder's lock for this command (apps/run_lock.py): refused at once while another command
    holds it, unless --wait."""
    from apps.run_lock import run_lock

    return run_lock(run, wait=getattr(args, "wait", False))


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from apps import pipeline
    from fields.io_utils import ensure_space

    images = Path(args.images)
    cfg = _settings(args)
    inputs = pipeline.read_inputs(images, cfg)  # read once; a bad folder fails before the run folder exists
    if not (args.output / "stages.json").is_file() or args.force:
        ensure_space(args.output, pipeline.space_needed(len(inputs.views), cfg))
    with _locked(args, args.output):
        if args.force:
            _clear_run(args.output)
        _config(args, args.output, cfg)
        pipeline.setup_logging(args.output)
        with _viewer(args, cfg, args.output) as viewer:
            seconds = pipeline.reconstruct(images, args.output, cfg, viewer, inputs)
        pipeline.log.info(pipeline.summary(args.output, seconds))


def _clear_run(run: Path) -> None:
    """Everything in a run folder but its lock (held by this command)."""
    import shutil

    from apps.run_lock import LOCK_NAME

    entries = [p for p in run.iterdir() if p.name != LOCK_NAME]
    if entries and not (run / "stages.json").is_file():
        raise FieldsError(f"{run} is not a fields run folder; refusing to delete it")
    for p in entries:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def cmd_sfm(args: argparse.Namespace) -> None:
    import time

    from apps import pipeline

    cfg = _settings(args)
    inputs = pipeline.read_inputs(Path(args.images), cfg)  # read once, before the run folder exists
    with _locked(args, args.output):
        _config(args, args.output, cfg)
        pipeline.setup_logging(args.output)
        stages = pipeline.Stages(args.output)
        t0 = time.time()
        with _viewer(args, cfg, args.output) as viewer:
            pipeline.run_sfm(Path(args.images), args.output, cfg, viewer, inputs)
        stages.mark("sfm", time.time() - t0)


def cmd_train(args: argparse.Namespace) -> None:
    from apps import pipeline

    cfg = _settings(args)
    with _locked(args, args.output):
        scene = pipeline.prepare_training_scene(Path(args.data), args.output, cfg, args.images)
        _config(args, args.output, cfg)
        pipeline.setup_logging(args.output)
        with _viewer(args, cfg, args.output) as viewer:
            pipeline.run_training(scene, args.output, cfg, viewer)


def cmd_view(args: argparse.Namespace) -> None:
    """Open a finished (or running) run in the viewer until Ctrl-C."""
    import time

    from apps import config
    from fields.neus.train import load_model, pick_device
    from fields.scene import Scene

    run = Path(args.run)
    if not (run / "scene.json").is_file():
        raise FieldsError(f"{run}: not a fields run folder (no scene.json)")
    cfg = config.load_preset(str(run / "config.yaml")) if (run / "config.yaml").is_file() else config.load_preset("default")
    scene = Scene.load(run, args.images)
    problem = scene.located.problem() if scene.located is not None else None
    if problem:
        warnings.warn(f"{problem}; the cameras are shown without them (give their folder with --images DIR)",
                      stacklevel=1)
    args.viewer = True
    with _viewer(args, cfg, run) as viewer:
        viewer.show_scene(scene, f"{run}: {len(scene.registered())} views")
        ckpt = run / "checkpoints" / "field.pt"
        if ckpt.is_file():
            model, _, step = load_model(ckpt, str(pick_device("auto")))
            viewer.show_model(model, step)
            viewer.set_stage(f"{run}: field at step {step}", 1.0)
        mesh = next((run / f"mesh.{f}" for f in ("ply", "glb", "obj") if (run / f"mesh.{f}").is_file()), None)
        if mesh is not None:
            viewer.show_mesh(mesh)
        print(f"viewing {run} at {viewer.url} (Ctrl-C to stop)", flush=True)
        deadline = time.time() + args.seconds if args.seconds else float("inf")
        while time.time() < deadline:
            time.sleep(0.2)


def cmd_export(args: argparse.Namespace) -> None:
    from apps import config
    from fields.neus.train import load_model
    from fields.scene import Scene

    run = Path(args.run)
    if not (run / "checkpoints" / "field.pt").is_file():
        raise FieldsError(f"{run}: no trained field (checkpoints/field.pt); run `fields train` first")
    cfg = config.load_preset(str(run / "config.yaml")) if (run / "config.yaml").is_file() else config.load_preset("default")
    scene = Scene.load(run)
    model, _, _ = load_model(run / "checkpoints" / "field.pt")
    with _locked(args, run):
        _export(args, run, cfg, scene, model)


def _export(args: argparse.Namespace, run: Path, cfg: dict, scene, model) -> None:
    from apps import pipeline
    from fields.export.mesh import export_mesh

    if args.what == "mesh":
        out = args.output or run / f"mesh.{args.format}"
        mesh = export_mesh(model, scene, Path(out), args.resolution or cfg["export"]["mesh_resolution"],
                           args.largest_component or cfg["export"]["largest_component"], not args.keep_unseen,
                           cfg["export"]["decimate_faces"] if args.decimate is None else args.decimate)
        print(f"wrote {out}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces")
    else:
        out = args.output or run / "video.mp4"
        e = cfg["export"]
        size = args.size or (e["video_size"] if args.path == "orbit" else None)  # a camera path has its own size
        outs = pipeline.export_video(model, scene, Path(out), args.path, args.frames or e["video_frames"], size,
                                     e["video_fps"], e["renderer"])
        print("wrote " + ", ".join(str(p) for p in outs))


def cmd_config(args: argparse.Namespace) -> None:
    """Print every setting, resolved from the preset and overrides, each under its comment."""
    from apps import config

    print(config.describe(_settings(args)), end="")


def _add_backend_arg(p: argparse.ArgumentParser) -> None:
    from apps.config import SFM_BACKENDS

    p.add_argument("--backend", choices=SFM_BACKENDS,
                   help="SfM: neural (Level-S2fM on an SDF), colmap (pycolmap's incremental mapper) or global "
                        "(pycolmap's global mapper, GLOMAP)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fields", description="Photos to a 3-D model: poses, a neural field, a mesh.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("reconstruct", help="images -> poses -> field -> mesh, video and poses (resumable)")
    p.add_argument("images", type=Path, help="folder of photos")
    p.add_argument("-o", "--output", type=Path, required=True, help="run folder")
    p.add_argument("--force", action="store_true", help="start over instead of resuming")
    _add_wait_arg(p)
    _add_backend_arg(p)
    _add_config_args(p)
    _add_viewer_args(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("sfm", help="camera poses from images; writes a COLMAP model and transforms.json")
    p.add_argument("images", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    _add_wait_arg(p)
    _add_backend_arg(p)
    _add_config_args(p)
    _add_viewer_args(p)
    p.set_defaults(func=cmd_sfm)

    p = sub.add_parser("train", help="train the SDF + radiance field on posed images")
    p.add_argument("data", type=Path, help="run folder, transforms.json, NeRF-synthetic folder or COLMAP model")
    p.add_argument("-o", "--output", type=Path, required=True)
    _add_images_arg(p)
    _add_wait_arg(p)
    _add_config_args(p)
    _add_viewer_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("config", help="print every setting (a preset with overrides applied), each with its comment")
    _add_config_args(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("view", help="open a run in the web viewer: cameras, points, mesh, live renders")
    p.add_argument("run", type=Path)
    p.add_argument("--host", help="viewer address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, help="viewer port (default 7007; the next free one when busy)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    _add_images_arg(p)
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("export", help="mesh or video from a trained run")
    esub = p.add_subparsers(dest="what", required=True)
    m = esub.add_parser("mesh", help="marching-cubes mesh in the input frame")
    m.add_argument("run", type=Path)
    m.add_argument("--resolution", type=int)
    m.add_argument("--format", choices=("ply", "obj", "glb"), default="ply")
    m.add_argument("--largest-component", action="store_true", help="keep only the largest connected part")
    m.add_argument("--keep-unseen", action="store_true", help="keep surface that no training camera saw")
    m.add_argument("--decimate", type=int, metavar="FACES", help="quadric decimation to about this many faces (0: off)")
    m.add_argument("-o", "--output", type=Path)
    _add_wait_arg(m)
    m.set_defaults(func=cmd_export)
    v = esub.add_parser("video", help="RGB, depth and normal videos (MP4) along an orbit or a camera path")
    v.add_argument("run", type=Path)
    v.add_argument("--path", default="orbit",
                   help="orbit, or a nerfstudio camera-path JSON with poses in the input frame (default orbit)")
    v.add_argument("--frames", type=int)
    v.add_argument("--size", type=int, help="longer side in pixels (at most; even sides)")
    v.add_argument("-o", "--output", type=Path)
    _add_wait_arg(v)
    v.set_defaults(func=cmd_export)

    p = sub.add_parser("fit", help="fit a coordinate network to a signal")
    fsub = p.add_subparsers(dest="what", required=True)
    f = fsub.add_parser("image", help="fit an image; prints PSNR, seconds and parameters")
    f.add_argument("image", type=Path)
    f.add_argument("--field", default="hash", help="hash, dense, triplane, fourier, pe or rbf (default hash)")
    f.add_argument("--cam", action="store_true", help="Coordinate-Aware Modulation on the MLP decoder")
    f.add_argument("--fresh", action="store_true", help="choose the encoding's frequency with FreSh first")
    f.add_argument("--steps", type=int, default=300)
    f.add_argument("--lr", type=float, default=1e-3, help="decoder learning rate; feature grids use 10x")
    f.add_argument("--batch", type=int, help="pixels per step (default: the whole image)")
    f.add_argument("--max-size", type=int, default=256, help="shrink the image to this longer side first")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("-o", "--output", type=Path, help="PNG of the reconstruction")
    f.set_defaults(func=cmd_fit_image)
    f = fsub.add_parser("sdf", help="fit an SDF to a mesh; prints Chamfer, F-score and seconds")
    f.add_argument("mesh", type=Path)
    f.add_argument("--field", default="hash", help="hash, triplane, dense or rbf (default hash)")
    f.add_argument("--seconds", type=float, default=30.0, help="training time budget")
    f.add_argument("--steps", type=int, help="stop after this many steps instead (or earlier)")
    f.add_argument("--batch", type=int, default=2048, help="surface points per step")
    f.add_argument("--lr", type=float, default=1e-3, help="decoder learning rate; feature grids use 10x")
    f.add_argument("--resolution", type=int, default=128, help="marching-cubes grid")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("-o", "--output", type=Path, help="PLY of the extracted surface")
    f.set_defaults(func=cmd_fit_sdf)

    p = sub.add_parser("eval", help="evaluate against a reference")
    esub = p.add_subparsers(dest="what", required=True)
    e = esub.add_parser("poses", help="pose errors of PRED against REF (any readable scene)")
    e.add_argument("pred", type=Path)
    e.add_argument("ref", type=Path)
    e.add_argument("-o", "--output", type=Path, help="JSON file (default: pose_metrics.json beside PRED)")
    e.set_defaults(func=cmd_eval)
    v = esub.add_parser("views", help="PSNR / SSIM (and depth, surface) of a run on its held-out views")
    v.add_argument("run", type=Path)
    v.add_argument("--every", type=int, default=1, help="evaluate every n-th held-out view (default all)")
    v.add_argument("--size", type=int, help="render size (default: the training image size)")
    v.add_argument("--renderer", choices=("volume", "traced"), default="volume",
                   help="volume rendering (the field as trained; default), or sphere tracing (faster; volume "
                        "rendering where it cannot settle a ray)")
    v.add_argument("--surface", type=Path, help="ground-truth surface mesh for Chamfer / F-score")
    v.add_argument("--align", type=Path, help="reference poses whose frame the surface is in (default: same frame)")
    v.add_argument("-o", "--output", type=Path, help="JSON file (default: RUN/view_metrics.json)")
    _add_images_arg(v)
    v.set_defaults(func=cmd_eval_views)
    return ap


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _one_line_warning
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except FieldsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a program that stopped reading (e.g. head)
        sys.stderr.close()
        return 141
    except OSError as exc:  # an I/O failure no stage turned into its own line (a full disk, a lost mount)
        print(f"error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    return 0


def _os_error_line(exc: OSError) -> str:
    """One line for an OSError: what failed, on which file, with free space when the disk is full."""
    from fields.io_utils import NO_SPACE, no_space

    if exc.errno in NO_SPACE and exc.filename:
        return str(no_space(exc.filename, None))
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


if __name__ == "__main__":
    sys.exit(main())
