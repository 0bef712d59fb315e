"""The settings of a run: one schema made of the option dataclasses, presets that hold only what differs
from them, and `section.key=value` overrides from the command line.

The dataclasses are the one source of defaults, each field with a comment saying what it is for
(`fields config` prints them). A section may be made of several dataclasses (`sfm`: the front end's
and the neural mapper's options beside the pipeline's own); a key two of them share (the seed) is one
setting given to both. Presets (configs/*.yaml, plain YAML, safe loader, `base:` to inherit) and
overrides are checked against the schema: an unknown key is an error that names the nearest valid one,
and every value against its field's rule (fields/settings.py: type, range, choices), so that a bad value
stops a command in one line before anything is written.
"""

from __future__ import annotations

import ast
import copy
import difflib
import inspect
import textwrap
from dataclasses import MISSING, dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from fields.errors import FieldsError
from fields.export import MESH_FORMATS
from fields.neus import RENDERERS
from fields.settings import setting, valid_value

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
# neural: Level-S2fM on an SDF; colmap: pycolmap's incremental mapper; global: pycolmap's global mapper (GLOMAP)
SFM_BACKENDS = ("neural", "colmap", "global")


@dataclass
class SfMConfig:
    """How poses are found; the front end's and the neural mapper's options join this section."""

    # neural: Level-S2fM on an SDF; colmap: pycolmap's incremental mapper; global: pycolmap's global
    # mapper, GLOMAP (also --backend)
    backend: str = setting("neural", choices=SFM_BACKENDS)
    # > 0: field of view in degrees across the longer side of photos without an EXIF focal length
    # (else a 45-degree guess that SfM estimates instead of trusting)
    fov: float = setting(0.0, ge=0, lt=180)


@dataclass
class NormalisationConfig:
    """The similarity from the SfM frame into the unit sphere the field lives in."""

    target_radius: float = setting(0.9, gt=0, le=1)  # the bulk of the sparse points lands inside this radius
    percentile: float = setting(90.0, gt=0, le=100)  # the share (%) of sparse points that counts as the bulk


@dataclass
class ExportConfig:
    """What `fields reconstruct` and `fields export` write after training."""

    mesh_resolution: int = setting(192, ge=2)  # marching-cubes grid over the unit cube
    mesh_format: str = setting("ply", choices=MESH_FORMATS)  # ply, obj or glb
    largest_component: bool = False  # keep only the largest connected part of the mesh
    cull_unseen: bool = True  # drop surface no training camera saw (e.g. under the ground)
    decimate_faces: int = setting(0, ge=0)  # > 0: quadric decimation to about this many faces
    video_frames: int = setting(48, ge=1)  # frames of the orbit video
    video_size: int = setting(240, ge=2)  # longer side of the video in pixels
    video_fps: int = setting(24, ge=1)  # frames per second of the videos
    renderer: str = setting("traced", choices=RENDERERS)  # videos: traced (sphere tracing, volume rendering where it cannot settle a ray) or volume
    eval_renderer: str = setting("volume", choices=RENDERERS)  # held-out evaluation: volume (the field as trained) or traced (faster, 0.2-0.3 dB lower on the demo)


@dataclass
class ViewerConfig:
    """Whether the live viewer runs; how it behaves is ViewerOptions."""

    enabled: bool = True  # live web viewer during sfm / train / reconstruct (--viewer / --no-viewer)


@cache
def schema() -> dict[str, tuple[type, ...]]:
    """Section -> the dataclasses whose fields it holds (the first one's fields first). Imported here, not
    at module level: they pull in torch and pycolmap, which `fields --help` does not need."""
    from apps.viewer import ViewerOptions
    from fields.neus.train import TrainConfig
    from sfm.frontend.extract import FrontEndOptions
    from sfm.neural.options import NeuralSfMOptions

    return {
        "sfm": (SfMConfig, FrontEndOptions, NeuralSfMOptions),
        "normalisation": (NormalisationConfig,),
        "train": (TrainConfig,),
        "export": (ExportConfig,),
        "viewer": (ViewerConfig, ViewerOptions),
    }


def retired(section: str) -> tuple[str, ...]:
    """Keys that earlier versions wrote into run folders' config.yaml and that no longer exist (dropped on reading)."""
    from fields.neus.train import RETIRED_KEYS

    return RETIRED_KEYS if section == "train" else ()


def section_defaults(section: str) -> dict[str, Any]:
    """A section's keys with their dataclass defaults."""
    out: dict[str, Any] = {}
    for cls in schema()[section]:
        for f in fields(cls):
            value = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            out.setdefault(f.name, value)
    return out


def defaults() -> dict[str, dict[str, Any]]:
    """Every setting at its default: what `--preset default` resolves to."""
    return {section: section_defaults(section) for section in schema()}


def options(cls: type, section: dict[str, Any]) -> Any:
    """The dataclass `cls` built from the settings of its section (keys of other classes skipped)."""
    return cls(**{f.name: section[f.name] for f in fields(cls) if f.name in section})


def all_keys() -> list[str]:
    return [f"{s}.{k}" for s, keys in defaults().items() for k in keys]


def unknown_key(key: str) -> FieldsError:
    """The error for a key the schema lacks, naming the nearest valid one."""
    keys = all_keys()
    last = key.rsplit(".", 1)[-1]
    near = [k for k in keys if k.rsplit(".", 1)[-1] == last] or difflib.get_close_matches(key, keys, 1, 0.5)
    hint = f"; did you mean {near[0]}?" if near else " (fields config lists them)"
    return FieldsError(f"unknown config key {key!r}{hint}")


def checked(data: dict, source: str) -> dict:
    """A preset's or a saved config's mapping, every key checked against the schema."""
    for section, values in data.items():
        if section not in schema():
            near = difflib.get_close_matches(section, list(schema()), 1, 0.5)
            raise FieldsError(f"{source}: unknown config section {section!r}"
                              + (f"; did you mean {near[0]}?" if near else f" ({', '.join(schema())})"))
        if not isinstance(values, dict):
            raise FieldsError(f"{source}: section {section!r} is not a mapping")
        known = section_defaults(section)
        for key in list(values):
            if key in retired(section):
                del values[key]
            elif key not in known:
                raise FieldsError(f"{source}: {unknown_key(f'{section}.{key}')}")
            else:
                values[key] = setting_value(section, key, values[key], f"{source}: {section}.{key}")
    return data


def setting_value(section: str, name: str, value: object, key: str | None = None) -> object:
    """value as the setting section.name takes it, checked against the rule of each dataclass of the
    section that holds it; otherwise FieldsError naming `key` (section.name by default)."""
    for cls in schema()[section]:
        if any(f.name == name for f in fields(cls)):
            value = valid_value(cls, name, value, key or f"{section}.{name}")
    return value


def consistent(cfg: dict, source: str | None = None) -> dict:
    """cfg, once the settings that must agree with each other do: only pairs that would otherwise fail
    later, when the model is built, after the run folder was written."""
    train = cfg.get("train", {})
    if train.get("cam") and train.get("sdf_decoder") != "mlp":
        where = f"{source}: " if source else ""
        raise FieldsError(f"{where}train.cam (CAM) needs train.sdf_decoder mlp, not {train.get('sdf_decoder')!r}")
    return cfg


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


def preset_differences(name_or_path: str) -> dict:
    """What a preset (configs/NAME.yaml or a path) changes, its `base:` chain resolved, keys checked."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise FieldsError(f"no preset {name_or_path!r} (presets: {names})")
    data = _read_yaml(path)
    base = data.pop("base", None)
    data = checked(data, str(path))
    return merge(preset_differences(base), data) if base else data


def load_preset(name_or_path: str) -> dict:
    """Every setting: the defaults with a preset's differences (a run's saved config.yaml reads the same way)."""
    return consistent(merge(defaults(), preset_differences(name_or_path)), name_or_path)


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """Apply `section.key=value` strings; values are parsed as YAML scalars (numbers written as text, such
    as YAML 1.1's 1e-4, taken as numbers) and checked (setting_value); keys must exist."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise FieldsError(f"override {item!r} is not of the form section.key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        section, _, name = key.partition(".")
        if section not in cfg or name not in cfg[section]:
            raise unknown_key(key)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw  # not YAML (e.g. an unclosed bracket): the text itself, which the check then names
        cfg[section][name] = setting_value(section, name, value, key)
    return consistent(cfg)


def auto_preset() -> str:
    """The preset for this machine: gpu with CUDA, else default."""
    import torch

    return "gpu" if torch.cuda.is_available() else "default"


def resolve(preset: str, overrides: list[str]) -> dict:
    """Every setting: the defaults, a preset ('auto': picked by device), then the overrides."""
    return apply_overrides(load_preset(auto_preset() if preset == "auto" else preset), overrides)


def save(cfg: dict, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


@cache
def field_comments(cls: type) -> dict[str, str]:
    """Each field's comment in the dataclass source: the one on its line, else the lines just above it."""
    source = textwrap.dedent(inspect.getsource(cls)).splitlines()
    out: dict[str, str] = {}
    for node in ast.parse("\n".join(source)).body[0].body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        line = source[node.lineno - 1]
        inline = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        above: list[str] = []
        i = node.lineno - 2
        while i >= 0 and source[i].strip().startswith("#"):
            above.insert(0, source[i].strip().lstrip("#").strip())
            i -= 1
        out[node.target.id] = " ".join(above + ([inline] if inline else []))
    return out


def describe(cfg: dict) -> str:
    """The settings as YAML, each key under its comment (`fields config`)."""
    lines: list[str] = []
    for section, values in cfg.items():
        lines.append(f"{section}:")
        comments: dict[str, str] = {}
        for cls in reversed(schema()[section]):
            comments.update(field_comments(cls))
        for key, value in values.items():
            for text in textwrap.wrap(comments.get(key, ""), 96):
                lines.append(f"  # {text}")
            lines.append("  " + yaml.safe_dump({key: value}, default_flow_style=True, width=1000).strip()[1:-1])
    return "\n".join(lines) + "\n"
