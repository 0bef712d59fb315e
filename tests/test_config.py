"""Presets and command-line overrides."""

from __future__ import annotations

import pytest

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
