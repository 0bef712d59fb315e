"""Training a NeuS SDF + radiance field on a posed Scene, with checkpoints that resume and a NaN guard."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fields.encodings.hash_grid import HashGrid, backward_to_parameters
from fields.errors import FieldsError
from fields.eval.image_metrics import psnr_from_mse
from fields.geometry.rays import camera_rays, pixel_grid, sphere_bounds
from fields.images import composite
from fields.neus.checkpoint import read_checkpoint, save_checkpoint
from fields.neus.occupancy_grid import OccupancyGrid
from fields.neus.radiance_field import (
    BACKGROUND_COLOURS,
    BACKGROUNDS,
    VIEW_ENCODINGS,
    RadianceField,
    make_background,
)
from fields.neus.regularisers import (
    curvature_loss,
    eikonal_term,
    pick_points,
    uniform_points,
)
from fields.neus.rendering import NeuSModel, Sharpness, render_rays
from fields.neus.sdf_field import SDF_DECODERS, SDFField
from fields.nn.builder import FIELD_SPECS, build_encoding
from fields.scene import Scene
from fields.settings import MAX_SEED, setting

# settings older checkpoints and run configs may hold that no longer exist; dropped when read
RETIRED_KEYS = ("fine_samples", "min_weight", "band_points")
SDF_ENCODINGS = ("hash", "triplane")
DEVICES = ("auto", "cpu", "cuda")  # auto: CUDA when present (pick_device)


@dataclass
class TrainConfig:
    """How the NeuS SDF + radiance field is trained (the `train` section of a run's settings)."""

    steps: int = setting(1500, ge=1)  # optimiser steps
    rays_per_batch: int = setting(1024, ge=1)  # rays drawn from the training images per step
    foreground_share: float = setting(0.5, ge=0, le=1)  # with masks: this share of each batch is drawn from the object's pixels alone
    n_samples: int = setting(64, ge=1)  # sections per ray (placed by the occupancy grid where the surface is)
    colour_min_transmittance: float = setting(1e-4, ge=0, le=1)  # samples hidden deeper behind the surface skip the colour network (0: none)
    lr: float = setting(5e-3, gt=0)  # peak learning rate (feature grids and networks alike; CAM's grids at 10x)
    warmup_steps: int = setting(100, ge=0)  # linear warm-up of the learning rate
    final_lr_factor: float = setting(0.1, gt=0, le=1)  # the learning rate decays exponentially to this share of its peak
    eikonal_weight: float = setting(0.1, ge=0)  # weight of the Eikonal term |grad f| = 1
    eikonal_points: int = setting(512, ge=1)  # uniform points in the cube, besides every sample that went through the SDF
    cos_anneal_steps: int = setting(250, ge=0)  # NeuS's cos annealing: steps until the ray-normal cosine is used in full
    occupancy_resolution: int = setting(64, ge=2)  # voxels per side of the occupancy grid
    occupancy_every: int = setting(16, ge=0)  # rebuild the occupancy grid from the SDF every this many steps (0: no grid)
    occupancy_band: float = setting(2.0, ge=0)  # voxels: samples go where the grid's SDF is this close to zero (or 3 / sharpness)
    max_image_size: int = setting(200, ge=1)  # training images are shrunk to this longer side
    hash_levels: int = setting(8, ge=1)  # levels of the SDF's hash grid
    hash_log2_size: int = setting(18, ge=1, le=31)  # log2 of the entries per hashed level
    hash_finest: int = setting(256, ge=16)  # resolution of the finest hash-grid level (the coarsest is 16)
    coarse_to_fine_steps: int = setting(100, ge=0)  # one more hash level active every this many steps (4 from the start)
    hidden: int = setting(64, ge=1)  # width of the SDF and colour networks
    view_encoding: str = setting("raw", choices=VIEW_ENCODINGS)  # the colour network's view direction: raw or sh (spherical harmonics)
    sdf_encoding: str = setting("hash", choices=SDF_ENCODINGS)  # hash or triplane
    sdf_decoder: str = setting("mlp", choices=SDF_DECODERS)  # mlp or rbf (Gaussian RBF layer)
    cam: bool = False  # Coordinate-Aware Modulation on the SDF's MLP
    curvature_weight: float = setting(0.0, ge=0)  # > 0: penalise normal changes over curvature_eps (smooths textureless parts)
    curvature_eps: float = setting(0.01, gt=0)  # distance over which the curvature term compares normals
    points_weight: float = setting(0.1, ge=0)  # > 0: |sdf| at the sparse SfM points (seen by 2+ training views) as a surface anchor
    background: str = setting("auto", choices=("auto", *BACKGROUNDS))  # auto (white for images with alpha, else learned), learned, white, black
    mask_weight: float = setting(0.1, ge=0)  # BCE of the rendered opacity against masks (alpha or mask files) when present
    checkpoint_every: int = setting(250, ge=1)  # steps between atomic checkpoints (a rerun resumes from the last one)
    time_budget_s: float = setting(0.0, ge=0)  # > 0: stop after this many seconds of training; the decay follows the clock
    holdout_every: int = setting(8, ge=2, off=0)  # without a test split, every n-th view is held out for `fields eval views` (0: none)
    seed: int = setting(0, ge=0, le=MAX_SEED)  # seeds the weights and the rays drawn
    device: str = setting("auto", choices=DEVICES)  # auto (CUDA when present), cpu or cuda

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(d) - known
        if unknown:
            raise FieldsError(f"unknown train settings: {', '.join(sorted(unknown))}")
        return TrainConfig(**d)


# called after each optimiser step with (step, model, stats or None); see train()
TrainListener = Callable[[int, NeuSModel, "dict | None"], "float | None"]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def sdf_encoding(cfg: TrainConfig) -> torch.nn.Module:
    """The SDF's encoding: the hash grid from the hash_* settings, or the library's tri-plane preset."""
    if cfg.sdf_encoding == "hash":
        return HashGrid(dim=3, n_levels=cfg.hash_levels, n_features=2, log2_hashmap_size=cfg.hash_log2_size,
                        base_resolution=16, finest_resolution=cfg.hash_finest)
    if cfg.sdf_encoding == "triplane":
        return build_encoding(FIELD_SPECS["triplane"]["encoding"], 3)
    raise FieldsError(f"unknown SDF encoding {cfg.sdf_encoding!r} ({', '.join(SDF_ENCODINGS)})")


def build_model(cfg: TrainConfig) -> NeuSModel:
    """The model a config describes; cfg.background must be resolved (not 'auto')."""
    sdf = SDFField(sdf_encoding(cfg), hidden=cfg.hidden, decoder=cfg.sdf_decoder, cam=cfg.cam)
    radiance = RadianceField(hidden=cfg.hidden, view_encoding=cfg.view_encoding)
    return NeuSModel(sdf, radiance, make_background(cfg.background), Sharpness())


def resolve_background(cfg: TrainConfig, scene: Scene, views: list[int]) -> TrainConfig:
    """cfg with background 'auto' replaced: white when the images have alpha (NeRF-synthetic's
    convention), a learned background otherwise."""
    if cfg.background != "auto":
        return cfg
    img, _ = scene.image(views[0], 8)
    return replace(cfg, background="white" if img.shape[2] == 4 else "learned")


def optimiser(model: NeuSModel, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam; CAM's grids at 10x the learning rate (their 'lr_scale' is kept when the schedule sets lr).

    The fused implementation (one kernel over all tensors): on the CPU it updates a hash table of a
    million entries in a tenth of the time of the per-tensor loop."""
    cam = model.sdf.cam_parameters()
    cam_ids = {id(p) for p in cam}
    groups = [{"params": [p for p in model.parameters() if id(p) not in cam_ids], "lr_scale": 1.0}]
    if cam:
        groups.append({"params": cam, "lr_scale": 10.0})
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    return torch.optim.Adam(groups, lr=cfg.lr, betas=(0.9, 0.99), eps=1e-15, fused=fused)


@dataclass
class RayBank:
    """Every training pixel as a ray in the normalised frame, its colour, and its foreground mask when
    every view has one (alpha or a mask file; None otherwise)."""

    origins: torch.Tensor
    dirs: torch.Tensor
    rgb: torch.Tensor
    mask: torch.Tensor | None = None
    colour_weight: torch.Tensor | None = None  # mask files: colour counts only on the object (NeuS w/ mask)

    def __len__(self) -> int:
        return self.origins.shape[0]

    def foreground(self) -> torch.Tensor | None:
        """Indices of the pixels on the object (mask > 0.5); None without masks or with no such pixel."""
        if self.mask is None:
            return None
        idx = torch.nonzero(self.mask > 0.5).squeeze(1)
        return idx if idx.numel() else None


def draw_rays(n_all: int, foreground: torch.Tensor | None, n: int, share: float, gen: torch.Generator) -> torch.Tensor:
    """n pixel indices: round(share * n) drawn among the foreground pixels, the rest among all of them.

    Background rays cost little (their samples skip the network) and, once the background is
    learned, teach little; a batch then spends most of its rays on the object."""
    k = 0 if foreground is None else int(round(min(max(share, 0.0), 1.0) * n))
    idx = torch.randint(0, n_all, (n - k,), generator=gen)
    if k:
        idx = torch.cat([idx, foreground[torch.randint(0, foreground.numel(), (k,), generator=gen)]])
    return idx


def ray_bank(scene: Scene, views: list[int], max_image_size: int, background: str = "white") -> RayBank:
    """Rays, colours (alpha composited on the fixed background, or on white for a learned one) and masks."""
    os_, ds, cs, ms = [], [], [], []
    mask_files = all(scene.views[i].mask is not None for i in views)
    for i in views:
        img, cam = scene.image(i, max_image_size)
        R, t = scene.normalised_pose(i)
        o, d = camera_rays(cam, R, t, pixel_grid(cam.width, cam.height))
        os_.append(o)
        ds.append(d)
        cs.append(composite(img, BACKGROUND_COLOURS.get(background, (1.0, 1.0, 1.0))).reshape(-1, 3))
        m = scene.mask(i, img, cam)
        ms.append(None if m is None else m.reshape(-1))
    cat = lambda xs: torch.from_numpy(np.concatenate(xs).astype(np.float32))  # noqa: E731
    mask = None if any(m is None for m in ms) else cat(ms)
    return RayBank(cat(os_), cat(ds), cat(cs), mask, mask if mask is not None and mask_files else None)


def anchor_points(scene: Scene, views: list[int]) -> torch.Tensor:
    """Sparse points (normalised frame) inside the unit sphere that at least two of `views` observe:
    points triangulated only with held-out views' help would leak them into training."""
    if len(scene.points) == 0:
        return torch.zeros(0, 3)
    keep = np.ones(len(scene.points), bool)  # points without tracks (e.g. a PLY beside transforms.json): all
    if scene.points.tracks:
        in_train = np.zeros(len(scene.views), bool)
        in_train[views] = True
        keep = np.array([len(t) > 0 and in_train[np.asarray(t)[:, 0]].sum() >= 2 for t in scene.points.tracks])
    xyz = scene.to_normalised.apply(scene.points.xyz[keep])
    return torch.from_numpy(xyz[np.linalg.norm(xyz, axis=1) < 1.0].astype(np.float32))


def lr_factor(step: int, cfg: TrainConfig, elapsed: float = 0.0) -> float:
    """Linear warm-up, then exponential decay to final_lr_factor at the last step (or at the end of
    the time budget, whichever comes first)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    if cfg.time_budget_s > 0:
        progress = max(progress, elapsed / cfg.time_budget_s)
    return cfg.final_lr_factor ** min(progress, 1.0)


def out_of_time(cfg: TrainConfig, elapsed: float) -> bool:
    return cfg.time_budget_s > 0 and elapsed >= cfg.time_budget_s


def load_model(path: Path, device: str = "cpu") -> tuple[NeuSModel, TrainConfig, int]:
    """The model stored in a checkpoint, its config and the step it reached."""
    ck = read_checkpoint(path, device)
    try:
        saved = {k: v for k, v in ck["config"].items() if k not in RETIRED_KEYS}
        cfg = TrainConfig.from_dict({"background": "learned", **saved})  # older runs: learned background
        model = build_model(cfg)
        model.load_state_dict(ck["model"])
        step = int(ck["step"])
    except (AttributeError, TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise FieldsError(f"cannot load checkpoint {path}: {str(exc).strip().splitlines()[0][:200]}") from None
    return model.to(device), cfg, step


def batch_loss(model: NeuSModel, out, target: torch.Tensor, mask: torch.Tensor | None,
               colour_weight: torch.Tensor | None, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Colour (smooth L1, on the object only when colour_weight is given), Eikonal (on the samples and
    the first cfg.eikonal_points of the render's extra points, the uniform ones), mask BCE, curvature,
    and the SDF at the sparse points (the rest of the extra points)."""
    n_eikonal = cfg.eikonal_points
    colour = torch.nn.functional.smooth_l1_loss(out.rgb, target, beta=0.1, reduction="none").mean(-1)
    if colour_weight is not None:
        colour = colour * colour_weight
    eikonal = eikonal_term(torch.cat([out.gradients, out.extra_gradients[:n_eikonal]]))
    loss = colour.mean() + cfg.eikonal_weight * eikonal
    if mask is not None and cfg.mask_weight > 0:
        opacity = out.opacity.clamp(1e-3, 1.0 - 1e-3)
        loss = loss + cfg.mask_weight * torch.nn.functional.binary_cross_entropy(opacity, mask)
    if cfg.curvature_weight > 0:
        curv = curvature_loss(model.sdf, out.points, out.gradients, cfg.eikonal_points, cfg.curvature_eps, gen)
        loss = loss + cfg.curvature_weight * curv
    if out.extra_sdf.shape[0] > n_eikonal:
        loss = loss + cfg.points_weight * out.extra_sdf[n_eikonal:].abs().mean()
    return loss


def training_grid(model: NeuSModel, cfg: TrainConfig, device: torch.device) -> OccupancyGrid | None:
    """The occupancy grid of the current SDF, its band at least 3 / sharpness (the soft density's reach)."""
    if cfg.occupancy_every <= 0:
        return None
    grid = OccupancyGrid.from_sdf(model.sdf.sdf, cfg.occupancy_resolution, device, cfg.occupancy_band)
    with torch.no_grad():
        band = max(grid.band, 3.0 / float(model.sharpness()))
    return OccupancyGrid(grid.sdf, min(band, 0.5))


def train_step(model: NeuSModel, opt: torch.optim.Optimizer, bank: RayBank, foreground: torch.Tensor | None,
               anchors: torch.Tensor | None, grid: OccupancyGrid | None, cfg: TrainConfig, gen: torch.Generator,
               step: int, device: torch.device):
    """One optimiser step on a batch of rays drawn from the bank: (loss, colour MSE, the render). A
    non-finite loss changes nothing (the caller rolls back or stops)."""
    idx = draw_rays(len(bank), foreground, cfg.rays_per_batch, cfg.foreground_share, gen)
    o, d, target = bank.origins[idx].to(device), bank.dirs[idx].to(device), bank.rgb[idx].to(device)
    near, far, _ = sphere_bounds(o, d)
    anneal = min(1.0, step / cfg.cos_anneal_steps) if cfg.cos_anneal_steps > 0 else 1.0
    # the regularisers' points go through the network with the samples: the Eikonal term's uniform
    # points, then the sparse SfM points the surface should pass through
    extra = [uniform_points(cfg.eikonal_points, gen, device)]
    if anchors is not None and len(anchors) and cfg.points_weight > 0:
        extra.append(pick_points(anchors, cfg.rays_per_batch, gen))
    out = render_rays(model, o, d, near, far, cfg.n_samples, grid=grid, anneal=anneal, create_graph=True,
                      extra=torch.cat(extra), min_transmittance=cfg.colour_min_transmittance)
    mse = ((out.rgb - target) ** 2).mean()
    pick = lambda t: None if t is None else t[idx].to(device)  # noqa: E731
    loss = batch_loss(model, out, target, pick(bank.mask), pick(bank.colour_weight), cfg, gen)
    if torch.isfinite(loss):
        opt.zero_grad(set_to_none=True)
        backward_to_parameters(loss, opt)
        opt.step()
    return loss, mse, out


def train(scene: Scene, cfg: TrainConfig, run: Path, log=print, listener: TrainListener | None = None) -> Path:
    """Train (or resume) and return the final checkpoint path run/checkpoints/field.pt.

    `listener(step, model, stats)` is called in this thread after every optimiser step, when the
    weights are whole (a viewer copies them there, and may hold the thread to pause training: it
    returns the seconds held, which do not count against the time budget); stats (loss, psnr,
    rays_per_s, total) come every 10 steps, None otherwise."""
    views = scene.train_views()
    if len(views) < 1:
        raise FieldsError("no registered training views to train on")
    device = pick_device(cfg.device)
    cfg = resolve_background(cfg, scene, views)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    ckpt_dir = run / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / "field.pt"
    model = build_model(cfg).to(device)
    opt = optimiser(model, cfg)
    start, before = 0, 0.0
    if ckpt.exists():
        ck = read_checkpoint(ckpt, device)
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError):
            raise FieldsError(f"{ckpt} holds a model of other settings than these; start over with --force "
                              "(or the settings it was trained with)") from None
        start, before = int(ck["step"]), float(ck.get("elapsed", 0.0))
        if start >= cfg.steps or out_of_time(cfg, before):
            return ckpt
        log(f"resuming training at step {start}")
    bank = ray_bank(scene, views, cfg.max_image_size, cfg.background)
    anchors = anchor_points(scene, views).to(device) if cfg.points_weight > 0 else None
    foreground = bank.foreground() if cfg.foreground_share > 0 else None
    if bank.mask is not None:
        log(f"training with masks ({'mask files' if bank.colour_weight is not None else 'alpha'}), "
            f"background {cfg.background}")
    good = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
    columns = [TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    t0, rays_done = time.time(), 0
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("train", total=cfg.steps, completed=start, info="")
        grid = None
        for step in range(start, cfg.steps):
            model.sdf.set_active_levels(4 + step // max(cfg.coarse_to_fine_steps, 1))
            if cfg.occupancy_every > 0 and (grid is None or step % cfg.occupancy_every == 0):
                grid = training_grid(model, cfg, device)
            elapsed = before + time.time() - t0
            for g in opt.param_groups:
                g["lr"] = cfg.lr * g.get("lr_scale", 1.0) * lr_factor(step, cfg, elapsed)
            loss, mse, _ = train_step(model, opt, bank, foreground, anchors, grid, cfg, gen, step, device)
            if not torch.isfinite(loss):
                model.load_state_dict(good[0])
                opt.load_state_dict(good[1])
                log(f"step {step}: non-finite loss, rolled back to the last good state")
                continue
            rays_done += cfg.rays_per_batch
            stats = None
            if (step + 1) % 10 == 0 or step + 1 == cfg.steps:
                rate = rays_done / max(time.time() - t0, 1e-9)
                stats = {"loss": loss.item(), "psnr": psnr_from_mse(mse.item()), "rays_per_s": rate, "total": cfg.steps}
                bar.update(task, completed=step + 1,
                           info=f"loss {stats['loss']:.4f} psnr {stats['psnr']:.2f} {rate:.0f} rays/s")
            stop = out_of_time(cfg, before + time.time() - t0)
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps or stop:
                save_checkpoint(ckpt, model, opt, step + 1, cfg, before + time.time() - t0)
                good = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
            if listener is not None:
                t0 += listener(step + 1, model, stats) or 0.0  # time held paused is not training time
            if stop:
                break
    log(f"trained {step + 1} steps in {before + time.time() - t0:.0f} s; last batch PSNR {psnr_from_mse(mse.item()):.2f} dB")
    return ckpt
