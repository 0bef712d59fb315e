"""Training checkpoints: written atomically after a free-space check, read without running code.

A checkpoint holds the model's and the optimiser's state, the step reached, the training settings and
the seconds spent; `torch.load(weights_only=True)` reads it, so a tampered file cannot run anything,
and any fault in it is one line.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from fields.errors import FieldsError
from fields.io_utils import atomic_write


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, cfg,
                    elapsed: float = 0.0) -> None:
    """Atomic checkpoint loadable with torch.load(weights_only=True); the free space is checked first
    (the tensors' bytes), and the last good checkpoint stays as it was when the write fails."""
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "config": asdict(cfg),
             "elapsed": elapsed}
    atomic_write(path, lambda tmp: torch.save(state, tmp), need_bytes=_tensor_bytes(state))


def _tensor_bytes(tree) -> int:
    """Bytes of the tensors in a nested dict / list (what torch.save writes, less a small overhead)."""
    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if isinstance(tree, dict):
        return sum(_tensor_bytes(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(_tensor_bytes(v) for v in tree)
    return 0


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint's contents, read with weights_only (no code runs); whatever is wrong with the file
    (truncated, tampered, not a checkpoint) is one line."""
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling foreign bytes can raise nearly anything
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FieldsError(f"cannot load checkpoint {path}: {first[:200]}") from None
    if not isinstance(ck, dict) or not {"model", "step", "config"} <= set(ck):
        raise FieldsError(f"cannot load checkpoint {path}: not a fields checkpoint")
    return ck
