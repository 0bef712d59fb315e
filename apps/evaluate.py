"""`fields eval`: poses against a reference, and a run's held-out views and surface."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fields.errors import FieldsError


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

    from fields.eval.views import evaluate_views
    from fields.neus.train import load_model
    from fields.scene import Scene

    run = Path(args.run)
    if not (run / "checkpoints" / "field.pt").is_file():
        raise FieldsError(f"{run}: no trained field (checkpoints/field.pt); run `fields train` first")
    scene = Scene.load(run, args.images)
    scene.require_images()
    model, tcfg, _ = load_model(run / "checkpoints" / "field.pt")
    views = scene.held_out_views()[:: max(args.every, 1)]
    if not views:
        raise FieldsError(f"{run}: no held-out views (train with train.holdout_every > 0, or data with a test split)")
    report = evaluate_views(model, scene, views, args.size or tcfg.max_image_size,
                            progress=lambda v: track(v, description="eval views"), renderer=args.renderer)
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
