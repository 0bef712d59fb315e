"""`fields fit`: a coordinate network fitted to an image or to a mesh's SDF."""

from __future__ import annotations

import argparse
from pathlib import Path

from fields.errors import FieldsError


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
