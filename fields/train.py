"""Training a NeuS SDF + radiance field on a posed Scene, with checkpoints that resume and a NaN guard."""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from fields.encodings.hash_grid import HashGrid
from fields.errors import FieldsError
from fields.images import composite
from fields.neus import NeuSModel, Sharpness
from fields.occupancy_grid import OccupancyGrid
from fields.radiance_field import Background, RadianceField
from fields.rays import camera_rays, pixel_grid, sphere_bounds
from fields.scene import Scene
from fields.sdf_field import SDFField


@dataclass
class TrainConfig:
    steps: int = 1500
    rays_per_batch: int = 512
    n_samples: int = 64
    lr: float = 5e-3
    warmup_steps: int = 100
    final_lr_factor: float = 0.1
    eikonal_weight: float = 0.1
    eikonal_points: int = 512  # uniform points in the cube, besides every sample that went through the SDF
    cos_anneal_steps: int = 250
    occupancy_resolution: int = 64
    occupancy_every: int = 16  # rebuild the occupancy grid from the SDF every this many steps (0: no grid)
    max_image_size: int = 200
    hash_levels: int = 8
    hash_log2_size: int = 16
    hash_finest: int = 256
    coarse_to_fine_steps: int = 100  # one more hash level active every this many steps
    hidden: int = 64
    checkpoint_every: int = 250
    time_budget_s: float = 0.0  # > 0: stop after this many seconds of training; the decay follows the clock
    holdout_every: int = 8  # without a test split, every n-th view is held out for `fields eval views` (0: none)
    seed: int = 0
    device: str = "auto"

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(d) - known
        if unknown:
            raise FieldsError(f"unknown train settings: {', '.join(sorted(unknown))}")
        return TrainConfig(**d)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(cfg: TrainConfig) -> NeuSModel:
    enc = HashGrid(dim=3, n_levels=cfg.hash_levels, n_features=2, log2_hashmap_size=cfg.hash_log2_size,
                   base_resolution=16, finest_resolution=cfg.hash_finest)
    return NeuSModel(SDFField(enc, hidden=cfg.hidden), RadianceField(hidden=cfg.hidden), Background(), Sharpness())


@dataclass
class RayBank:
    """Every training pixel as a ray in the normalised frame, with near/far inside the unit sphere."""

    origins: torch.Tensor
    dirs: torch.Tensor
    rgb: torch.Tensor

    def __len__(self) -> int:
        return self.origins.shape[0]


def ray_bank(scene: Scene, views: list[int], max_image_size: int) -> RayBank:
    os_, ds, cs = [], [], []
    for i in views:
        img, cam = scene.image(i, max_image_size)
        R, t = scene.normalised_pose(i)
        o, d = camera_rays(cam, R, t, pixel_grid(cam.width, cam.height))
        os_.append(o)
        ds.append(d)
        cs.append(composite(img).reshape(-1, 3))
    cat = lambda xs: torch.from_numpy(np.concatenate(xs).astype(np.float32))  # noqa: E731
    return RayBank(cat(os_), cat(ds), cat(cs))


def train_views(scene: Scene) -> list[int]:
    """Registered views of the train split."""
    return [i for i in scene.registered() if scene.views[i].split == "train"]


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


def save_checkpoint(path: Path, model: NeuSModel, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig,
                    elapsed: float = 0.0) -> None:
    """Atomic checkpoint loadable with torch.load(weights_only=True)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "config": asdict(cfg),
                "elapsed": elapsed}, tmp)
    os.replace(tmp, path)


def load_model(path: Path, device: str = "cpu") -> tuple[NeuSModel, TrainConfig, int]:
    """The model stored in a checkpoint, its config and the step it reached."""
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise FieldsError(f"cannot load checkpoint {path}: {exc}") from None
    cfg = TrainConfig.from_dict(ck["config"])
    model = build_model(cfg)
    model.load_state_dict(ck["model"])
    return model.to(device), cfg, int(ck["step"])


def eikonal_loss(model: NeuSModel, sample_grads: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """(|grad f| - 1)^2 on the render's samples and on n uniform points in the unit cube."""
    uniform = (torch.rand(n, 3, generator=gen) * 2.0 - 1.0).to(sample_grads.device)
    _, _, grad = model.sdf.gradient(uniform, create_graph=True)
    return ((torch.cat([sample_grads, grad]).norm(dim=-1) - 1.0) ** 2).mean()


def training_grid(model: NeuSModel, cfg: TrainConfig, device: torch.device) -> OccupancyGrid | None:
    """The occupancy grid of the current SDF, its band at least 3 / sharpness (the soft density's reach)."""
    if cfg.occupancy_every <= 0:
        return None
    grid = OccupancyGrid.from_sdf(model.sdf.sdf, cfg.occupancy_resolution, device)
    with torch.no_grad():
        band = max(grid.band, 3.0 / float(model.sharpness()))
    return OccupancyGrid(grid.sdf, min(band, 0.5))


def psnr(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-10))


def train(scene: Scene, cfg: TrainConfig, run: Path, log=print) -> Path:
    """Train (or resume) and return the final checkpoint path run/checkpoints/field.pt."""
    views = train_views(scene)
    if len(views) < 1:
        raise FieldsError("no registered training views to train on")
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    ckpt_dir = run / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / "field.pt"
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), eps=1e-15)
    start, before = 0, 0.0
    if ckpt.exists():
        ck = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, before = int(ck["step"]), float(ck.get("elapsed", 0.0))
        if start >= cfg.steps or out_of_time(cfg, before):
            return ckpt
        log(f"resuming training at step {start}")
    bank = ray_bank(scene, views, cfg.max_image_size)
    good = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
    columns = [TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    t0, rays_done = time.time(), 0
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("train", total=cfg.steps, completed=start, info="")
        grid = None
        for step in range(start, cfg.steps):
            model.sdf.encoding.set_active_levels(4 + step // max(cfg.coarse_to_fine_steps, 1))
            if cfg.occupancy_every > 0 and (grid is None or step % cfg.occupancy_every == 0):
                grid = training_grid(model, cfg, device)
            elapsed = before + time.time() - t0
            for g in opt.param_groups:
                g["lr"] = cfg.lr * lr_factor(step, cfg, elapsed)
            idx = torch.randint(0, len(bank), (cfg.rays_per_batch,), generator=gen)
            o, d, target = bank.origins[idx].to(device), bank.dirs[idx].to(device), bank.rgb[idx].to(device)
            near, far, _ = sphere_bounds(o, d)
            anneal = min(1.0, step / cfg.cos_anneal_steps) if cfg.cos_anneal_steps > 0 else 1.0
            out = model.render(o, d, near, far, cfg.n_samples, grid=grid, anneal=anneal, create_graph=True)
            mse = ((out.rgb - target) ** 2).mean()
            eik = eikonal_loss(model, out.gradients, cfg.eikonal_points, gen)
            loss = torch.nn.functional.smooth_l1_loss(out.rgb, target, beta=0.1) + cfg.eikonal_weight * eik
            if not torch.isfinite(loss):
                model.load_state_dict(good[0])
                opt.load_state_dict(good[1])
                log(f"step {step}: non-finite loss, rolled back to the last good state")
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rays_done += cfg.rays_per_batch
            if (step + 1) % 10 == 0 or step + 1 == cfg.steps:
                rate = rays_done / max(time.time() - t0, 1e-9)
                bar.update(task, completed=step + 1,
                           info=f"loss {loss.item():.4f} psnr {psnr(mse.item()):.2f} {rate:.0f} rays/s")
            stop = out_of_time(cfg, before + time.time() - t0)
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps or stop:
                save_checkpoint(ckpt, model, opt, step + 1, cfg, before + time.time() - t0)
                good = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
            if stop:
                break
    log(f"trained {step + 1} steps in {before + time.time() - t0:.0f} s; last batch PSNR {psnr(mse.item()):.2f} dB")
    return ckpt
