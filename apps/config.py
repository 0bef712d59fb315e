"""Presets in configs/ (plain YAML, safe loader) with `section.key=value` overrides from the command line."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from fields.errors import FieldsError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
# neural: Level-S2fM on an SDF; colmap: pycolmap's incremental mapper; global: pycolmap's global mapper (GLOMAP)
SFM_BACKENDS = ("neural", "colmap", "global")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FieldsError(f"cannot read config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise FieldsError(f"config {path} is not a mapping")
    return data


def merge(base: dict, over: dict) -> dict:
    """Recursive dict merge; values from `over` win."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def load_preset(name_or_path: str) -> dict:
    """A preset by name (configs/NAME.yaml) or path, with its `base:` chain resolved."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise FieldsError(f"no preset {name_or_path!r} (presets: {names})")
    data = _read_yaml(path)
    base = data.pop("base", None)
    return merge(load_preset(base), data) if base else data


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Apply `section.key=value` strings; values are parsed as YAML scalars; keys must exist."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise FieldsError(f"override {item!r} is not of the form section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = cfg
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise FieldsError(f"unknown config section {key!r}")
            node = node[p]
        if parts[-1] not in node:
            raise FieldsError(f"unknown config key {key!r}")
        node[parts[-1]] = typed_value(key, raw, node[parts[-1]])
    return cfg


def typed_value(key: str, raw: str, current: object) -> object:
    """raw parsed as a YAML scalar; where the preset has a number, a number (YAML 1.1 reads 1e-4 as text)."""
    value = yaml.safe_load(raw)
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        return value
    if isinstance(value, (int, float)):
        return float(value) if isinstance(current, float) and isinstance(value, int) else value
    try:
        number = float(raw)
    except ValueError:
        raise FieldsError(f"{key} expects a number, not {raw!r}") from None
    return int(number) if isinstance(current, int) and number.is_integer() else number


def auto_preset() -> str:
    """The preset for this machine: gpu with CUDA, else default."""
    import torch

    return "gpu" if torch.cuda.is_available() else "default"


def resolve(preset: str, overrides: list[str]) -> dict:
    """A preset ('auto': picked by device) with overrides applied."""
    return apply_overrides(load_preset(auto_preset() if preset == "auto" else preset), overrides)


def save(cfg: dict, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
