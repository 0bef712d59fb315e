"""The `fields` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

from fields.errors import FieldsError


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="auto",
                   help="preset name in configs/ or a YAML path (default auto: gpu with CUDA, else default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value (repeatable), e.g. --set train.steps=3000")


def _add_viewer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--viewer", action=argparse.BooleanOptionalAction, default=None,
                   help="live web viewer (default: on, see viewer.enabled)")
    p.add_argument("--host", help="viewer address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="viewer port (default 7007; the next free one when busy)")


@contextlib.contextmanager
def _viewer(args: argparse.Namespace, cfg: dict, run: Path | None):
    """The live viewer for a command (None when off), closed when the command ends."""
    from apps.viewer import start_viewer

    viewer = start_viewer(cfg, run, args.viewer, args.host, args.port)
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


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from apps import pipeline

    images = Path(args.images)
    cfg = _settings(args)
    inputs = pipeline.read_inputs(images, cfg)  # read once; a bad folder fails before the run folder exists
    if args.force and args.output.exists():
        _clear_run(args.output)
    _config(args, args.output, cfg)
    pipeline.setup_logging(args.output)
    with _viewer(args, cfg, args.output) as viewer:
        seconds = pipeline.reconstruct(images, args.output, cfg, viewer, inputs)
    pipeline.log.info(pipeline.summary(args.output, seconds))


def _clear_run(run: Path) -> None:
    import shutil

    if not (run / "stages.json").is_file() and any(run.iterdir()):
        raise FieldsError(f"{run} is not a fields run folder; refusing to delete it")
    shutil.rmtree(run)


def cmd_sfm(args: argparse.Namespace) -> None:
    from apps import pipeline

    cfg = _settings(args)
    inputs = pipeline.read_inputs(Path(args.images), cfg)  # read once, before the run folder exists
    _config(args, args.output, cfg)
    pipeline.setup_logging(args.output)
    stages = pipeline.Stages(args.output)
    import time

    t0 = time.time()
    with _viewer(args, cfg, args.output) as viewer:
        pipeline.run_sfm(Path(args.images), args.output, cfg, viewer, inputs)
    stages.mark("sfm", time.time() - t0)


def cmd_train(args: argparse.Namespace) -> None:
    from apps import pipeline

    cfg = _config(args, args.output)
    pipeline.setup_logging(args.output)
    scene = pipeline.prepare_training_scene(Path(args.data), args.output, cfg)
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
    args.viewer = True
    with _viewer(args, cfg, run) as viewer:
        if viewer is None:
            raise FieldsError("the viewer could not start (see the warning above)")
        scene = Scene.load(run)
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
    from apps import config, pipeline
    from fields.export.mesh import export_mesh
    from fields.neus.train import load_model
    from fields.scene import Scene

    run = Path(args.run)
    if not (run / "checkpoints" / "field.pt").is_file():
        raise FieldsError(f"{run}: no trained field (checkpoints/field.pt); run `fields train` first")
    cfg = config.load_preset(str(run / "config.yaml")) if (run / "config.yaml").is_file() else config.load_preset("default")
    scene = Scene.load(run)
    model, _, _ = load_model(run / "checkpoints" / "field.pt")
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
                                     e["video_fps"])
        print("wrote " + ", ".join(str(p) for p in outs))


def cmd_eval(args: argparse.Namespace) -> None:
    from sfm.io import load_scene
    from sfm.pose_metrics import ALIGN_TOLERANCE, compare_poses

    pred, ref = load_scene(Path(args.pred)), load_scene(Path(args.ref), one_split=True)
    report = compare_poses(pred, ref)
    d = report.to_dict()
    print(f"registered        {d['registered']}/{d['total']}, aligned on {d['aligned']} "
          f"(centres within {100 * ALIGN_TOLERANCE:.0f} % of the scene scale)")
    print(f"rotation error    median {d['rotation_error_median_deg']:.3f} deg, mean {d['rotation_error_mean_deg']:.3f} deg")
    print(f"centre error      median {100 * d['center_error_median']:.3f} %, mean {100 * d['center_error_mean']:.3f} % of scene scale")
    print(f"relative AUC      @5 {100 * d['auc5']:.1f}  @10 {100 * d['auc10']:.1f}  @20 {100 * d['auc20']:.1f}")
    out = Path(args.output) if args.output else (Path(args.pred) if Path(args.pred).is_dir() else Path(args.pred).parent) / "pose_metrics.json"
    out.write_text(json.dumps(d, indent=1))
    print(f"wrote {out}")


def cmd_eval_views(args: argparse.Namespace) -> None:
    from rich.progress import track

    from fields.eval.views import evaluate_views, held_out_views
    from fields.neus.train import load_model
    from fields.scene import Scene

    run = Path(args.run)
    if not (run / "checkpoints" / "field.pt").is_file():
        raise FieldsError(f"{run}: no trained field (checkpoints/field.pt); run `fields train` first")
    scene = Scene.load(run)
    model, tcfg, _ = load_model(run / "checkpoints" / "field.pt")
    views = held_out_views(scene)[:: max(args.every, 1)]
    if not views:
        raise FieldsError(f"{run}: no held-out views (train with train.holdout_every > 0, or data with a test split)")
    report = evaluate_views(model, scene, views, args.size or tcfg.max_image_size,
                            progress=lambda v: track(v, description="eval views"))
    d = report.to_dict()
    print(f"views             {d['views']} held out")
    print(f"PSNR              {d['psnr']:.2f} dB")
    print(f"SSIM              {d['ssim']:.4f}")
    if d["depth_abs"] is not None:
        print(f"depth error       {d['depth_abs']:.4f} ({100 * d['depth_rel']:.2f} % of mean depth, after one affine "
              f"calibration of the depth PNGs over {d['depth_pixels']} pixels)")
    if args.surface:
        d["surface"] = surface_report(run, scene, Path(args.surface), args.align)
        sf, seen = d["surface"], d["surface"]["seen"]
        print(f"surface           Chamfer {100 * sf['chamfer']:.3f} % of the bbox diagonal, "
              f"F-score@0.5% {sf['fscore']:.3f}")
        print(f"surface (seen)    Chamfer {100 * seen['chamfer']:.3f} %, F-score@0.5% {seen['fscore']:.3f} against "
              f"the {100 * seen['share']:.0f} % of the reference its cameras see")
    out = Path(args.output) if args.output else run / "view_metrics.json"
    out.write_text(json.dumps(d, indent=1))
    print(f"wrote {out}")


def surface_report(run: Path, scene, reference: Path, align: Path | None) -> dict:
    """Chamfer / F-score of the run's mesh against a reference surface, after aligning frames by camera
    centres: against all of it, and against the part the reference cameras see (DTU's protocol:
    surface no photo shows, like the underside of a ground, cannot be reconstructed)."""
    import numpy as np
    import trimesh

    from fields.eval.meshes import surface_distance
    from sfm.io import load_scene
    from sfm.pose_metrics import umeyama

    meshes = [run / f"mesh.{f}" for f in ("ply", "obj", "glb") if (run / f"mesh.{f}").is_file()]
    if not meshes:
        raise FieldsError(f"{run}: no mesh to compare (run `fields export mesh` first)")
    try:
        mesh = trimesh.load(meshes[0], force="mesh", process=False)
        ref = trimesh.load(reference, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many kinds on bad files
        raise FieldsError(f"cannot read mesh: {exc}") from None
    ref_scene = scene
    if align is not None:
        ref_scene = load_scene(align)
        by_name = {v.name: v for v in ref_scene.views if v.registered}
        pairs = [(v.center, by_name[v.name].center) for v in scene.views if v.registered and v.name in by_name]
        if len(pairs) < 3:
            raise FieldsError(f"only {len(pairs)} views shared with {align}; need 3 to align the frames")
        sim = umeyama(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
        mesh.vertices = sim.apply(np.asarray(mesh.vertices))
    cameras = [(ref_scene.camera_of(i), ref_scene.views[i].R, ref_scene.views[i].t) for i in ref_scene.registered()]
    rep = surface_distance(mesh, ref, cameras=cameras)
    d = {k: {"chamfer": r.chamfer, "fscore": r.fscore, "precision": r.precision, "recall": r.recall,
             "share": r.reference_share} for k, r in (("all", rep), ("seen", rep.seen))}
    return {**d["all"], "seen": d["seen"]}


def cmd_fit_image(args: argparse.Namespace) -> None:
    import imageio.v2 as imageio
    import numpy as np

    from fields.fit.image import fit_image
    from fields.images import load_image, resize
    from fields.nn.builder import build_field, resolve_spec

    img = load_image(Path(args.image))[..., :3]
    h, w = img.shape[:2]
    if args.max_size and max(h, w) > args.max_size:
        s = args.max_size / max(h, w)
        img = resize(img, (max(1, round(w * s)), max(1, round(h * s))))
    spec = resolve_spec(args.field, args.cam)
    if args.fresh:
        spec = fresh_spec(spec, img)
    field = build_field(spec, 2, 3)
    fit = fit_image(field, img, args.steps, lr=args.lr, batch=args.batch, seed=args.seed)
    out = args.output or Path(args.image).with_name(Path(args.image).stem + f"_{args.field}{'_cam' if args.cam else ''}.png")
    imageio.imwrite(out, np.round(fit.image * 255).astype(np.uint8))
    print(f"PSNR {fit.psnr:.2f} dB  {fit.seconds:.1f} s  {fit.parameters:,} parameters  -> {out}")


def cmd_fit_sdf(args: argparse.Namespace) -> None:
    import trimesh

    from fields.eval.meshes import surface_distance
    from fields.fit.sdf import SphereResidualSDF, fit_sdf, sdf_spec
    from fields.nn.builder import build_field

    try:
        mesh = trimesh.load(args.mesh, force="mesh", process=False)
    except (OSError, ValueError) as exc:
        raise FieldsError(f"cannot read mesh {args.mesh}: {exc}") from None
    if len(getattr(mesh, "faces", [])) == 0:
        raise FieldsError(f"{args.mesh}: no triangles")
    sdf = SphereResidualSDF(build_field(sdf_spec(args.field), 3, 1))
    fit = fit_sdf(sdf, mesh, args.seconds, max_steps=args.steps or 10**9, batch=args.batch, lr=args.lr,
                  resolution=args.resolution, seed=args.seed)
    if len(fit.mesh.faces) == 0:
        raise FieldsError("the fitted SDF has no zero level set; try more time or another field")
    rep = surface_distance(fit.mesh, mesh)
    out = args.output or Path(args.mesh).with_name(Path(args.mesh).stem + f"_{args.field}_sdf.ply")
    fit.mesh.export(out)
    print(f"Chamfer {100 * rep.chamfer:.3f} % of the bbox diagonal  F-score@{100 * rep.tau:.1f}% {rep.fscore:.3f}  "
          f"{fit.seconds:.1f} s ({fit.steps} steps)  -> {out}")


FRESH_CANDIDATES = {"fourier": ("sigma", [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]),
                    "hash": ("finest_resolution", [32, 64, 128, 256, 512, 1024, 2048])}


def fresh_spec(spec: dict, img) -> dict:
    """The spec with its frequency hyperparameter chosen by FreSh against the image."""
    import time

    from fields.fit.fresh import fourier_sigma_maker, fresh_select, hash_finest_maker

    kind = spec["encoding"]["type"]
    if kind not in FRESH_CANDIDATES:
        raise FieldsError(f"--fresh tunes fourier (sigma) or hash (finest resolution) encodings, not {kind}")
    key, candidates = FRESH_CANDIDATES[kind]
    maker = fourier_sigma_maker if kind == "fourier" else hash_finest_maker
    t0 = time.perf_counter()
    choice = fresh_select(img, candidates, maker(spec, 2, 3))
    spec["encoding"][key] = choice.value if kind == "fourier" else int(choice.value)
    print(f"FreSh: {key} = {choice.value} ({time.perf_counter() - t0:.1f} s)")
    return spec


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
    _add_backend_arg(p)
    _add_config_args(p)
    _add_viewer_args(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("sfm", help="camera poses from images; writes a COLMAP model and transforms.json")
    p.add_argument("images", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True)
    _add_backend_arg(p)
    _add_config_args(p)
    _add_viewer_args(p)
    p.set_defaults(func=cmd_sfm)

    p = sub.add_parser("train", help="train the SDF + radiance field on posed images")
    p.add_argument("data", type=Path, help="run folder, transforms.json, NeRF-synthetic folder or COLMAP model")
    p.add_argument("-o", "--output", type=Path, required=True)
    _add_config_args(p)
    _add_viewer_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("view", help="open a run in the web viewer: cameras, points, mesh, live renders")
    p.add_argument("run", type=Path)
    p.add_argument("--host", help="viewer address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="viewer port (default 7007; the next free one when busy)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
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
    m.set_defaults(func=cmd_export)
    v = esub.add_parser("video", help="RGB, depth and normal videos (MP4) along an orbit or a camera path")
    v.add_argument("run", type=Path)
    v.add_argument("--path", default="orbit",
                   help="orbit, or a nerfstudio camera-path JSON with poses in the input frame (default orbit)")
    v.add_argument("--frames", type=int)
    v.add_argument("--size", type=int, help="longer side in pixels (at most; even sides)")
    v.add_argument("-o", "--output", type=Path)
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
    v.add_argument("--surface", type=Path, help="ground-truth surface mesh for Chamfer / F-score")
    v.add_argument("--align", type=Path, help="reference poses whose frame the surface is in (default: same frame)")
    v.add_argument("-o", "--output", type=Path, help="JSON file (default: RUN/view_metrics.json)")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
