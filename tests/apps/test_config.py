"""Presets and command-line overrides (apps/config.py), and `fields config`."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from apps.config import apply_overrides, load_preset
from fields.errors import FieldsError
from fields.neus.train import TrainConfig


def test_fast_preset_inherits_default_and_overrides_parse_yaml_scalars():
    default, fast = load_preset("default"), load_preset("fast")
    assert fast["train"]["steps"] < default["train"]["steps"]
    assert fast["sfm"] == default["sfm"]
    cfg = apply_overrides(fast, ["train.steps=7", "train.device=cpu", "export.largest_component=true"])
    assert cfg["train"]["steps"] == 7 and cfg["export"]["largest_component"] is True
    TrainConfig.from_dict(cfg["train"])  # every train key is a real setting


def test_numbers_in_exponent_form_stay_numbers():
    """YAML 1.1 reads 1e-4 as text; a key whose preset value is a number takes it as a number."""
    cfg = apply_overrides(load_preset("default"), ["train.lr=1e-3", "train.steps=2e3", "train.eikonal_weight=1"])
    assert cfg["train"]["lr"] == pytest.approx(1e-3) and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["steps"] == 2000 and isinstance(cfg["train"]["steps"], int)
    assert isinstance(cfg["train"]["eikonal_weight"], float)
    with pytest.raises(FieldsError, match="train.lr expects a number"):
        apply_overrides(load_preset("default"), ["train.lr=fast"])


def test_unknown_keys_and_presets_are_one_line_errors():
    with pytest.raises(FieldsError, match="unknown config key"):
        apply_overrides(load_preset("default"), ["train.stepz=3"])
    with pytest.raises(FieldsError, match="section.key=value"):
        apply_overrides(load_preset("default"), ["train.steps"])
    with pytest.raises(FieldsError, match="no preset"):
        load_preset("nonexistent")


def test_auto_preset_is_picked_by_device(monkeypatch):
    import torch

    from apps.config import resolve

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve("auto", []) == load_preset("default")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = resolve("auto", ["train.steps=7"])
    assert gpu["train"]["device"] == "cuda" and gpu["train"]["steps"] == 7
    assert gpu["train"]["hash_levels"] > load_preset("default")["train"]["hash_levels"]


def test_the_dataclasses_are_the_one_source_of_defaults():
    """The default preset is the dataclass defaults; every field of every section has a comment; a key two
    dataclasses of one section share has one default; the other presets hold only what differs."""
    from apps.config import (
        defaults,
        field_comments,
        options,
        preset_differences,
        schema,
    )

    assert load_preset("default") == defaults()
    for section, classes in schema().items():
        seen = {}
        for cls in classes:
            comments = field_comments(cls)
            for f in dataclasses.fields(cls):
                assert comments.get(f.name), f"{section}.{f.name} ({cls.__name__}) has no comment"
                value = options(cls, load_preset("default")[section])
                assert getattr(value, f.name) == getattr(cls(), f.name)
                if f.name in seen:
                    assert seen[f.name] == getattr(cls(), f.name), f"{section}.{f.name}: two defaults"
                seen[f.name] = getattr(cls(), f.name)
    for name in ("fast", "gpu"):
        for section, values in preset_differences(name).items():
            for key, value in values.items():
                assert defaults()[section][key] != value, f"{name}.yaml repeats the default {section}.{key}"


def test_unknown_keys_name_the_nearest_valid_one(tmp_path):
    with pytest.raises(FieldsError, match="did you mean sfm.matching"):
        apply_overrides(load_preset("default"), ["sfm.matchin=exhaustive"])
    with pytest.raises(FieldsError, match="did you mean train.max_image_size"):
        apply_overrides(load_preset("default"), ["train.max_size=100"])
    preset = tmp_path / "mine.yaml"
    preset.write_text("base: default\ntrian:\n  steps: 3\n")
    with pytest.raises(FieldsError, match="did you mean train"):
        load_preset(str(preset))
    preset.write_text("base: fast\ntrain:\n  stpes: 3\n")
    with pytest.raises(FieldsError, match="did you mean train.steps"):
        load_preset(str(preset))
    with pytest.raises(FieldsError, match="expects true or false"):
        apply_overrides(load_preset("default"), ["train.cam=maybe"])


def test_every_setting_is_reachable_from_the_command_line_and_fields_config_prints_it(capsys):
    from apps.cli import main
    from apps.config import all_keys, defaults

    assert main(["config", "--preset", "fast", "--set", "sfm.tau=0.03", "--set", "viewer.duty=0.1"]) == 0
    printed = capsys.readouterr().out
    parsed = yaml.safe_load(printed)
    assert parsed["sfm"]["tau"] == 0.03 and parsed["viewer"]["duty"] == 0.1 and parsed["train"]["steps"] == 300
    assert sorted(f"{s}.{k}" for s, v in parsed.items() for k in v) == sorted(all_keys())
    assert "# optimiser steps" in printed
    for key in all_keys():  # each key takes a new value of its type
        section, name = key.split(".")
        current = defaults()[section][name]
        new = (not current) if isinstance(current, bool) else current * 2 + 1 if isinstance(current, (int, float)) \
            else "other"
        assert apply_overrides(defaults(), [f"{key}={new}"])[section][name] == new


def test_a_saved_config_with_retired_keys_still_reads(tmp_path):
    saved = load_preset("default")
    saved["train"]["fine_samples"] = 0
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_preset(str(tmp_path / "config.yaml")) == load_preset("default")
