"""Presets and command-line overrides (apps/config.py), and `fields config`."""

from __future__ import annotations

import dataclasses
import math

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.config import apply_overrides, defaults, load_preset, schema, setting_value
from fields.errors import FieldsError
from fields.neus.train import TrainConfig
from fields.settings import Rule, kind_of, rule_of


def every_setting() -> list[tuple[str, type, Rule]]:
    """(section.key, type, rule) of every field of every option dataclass: the cases below come from the
    schema itself, so a new setting is covered without a new test."""
    out: dict[str, tuple[str, type, Rule]] = {}
    for section, classes in schema().items():
        for cls in classes:
            for f in dataclasses.fields(cls):
                out.setdefault(f"{section}.{f.name}", (f"{section}.{f.name}", kind_of(cls, f.name), rule_of(cls, f.name)))
    return list(out.values())


SETTINGS = every_setting()
NUMBERS = [s for s in SETTINGS if s[1] in (int, float)]
FREE_TEXT = {"viewer.host"}  # the only text settings without a fixed set of values


def another_value(kind: type, rule: Rule, current: object) -> object:
    """A value other than `current` that the setting allows."""
    if kind is bool:
        return not current
    if kind is str:
        return next(c for c in rule.choices if c != current) if rule.choices else "other"
    upper = rule.le if rule.le is not None else rule.lt
    candidates = [current * 2 + 1, current + 1] + ([] if upper is None else [(current + upper) / 2]) + [current / 2]
    return next(kind(c) for c in candidates if kind(c) == c and kind(c) != current and rule.inside(kind(c)))


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
    with pytest.raises(FieldsError, match="train.lr must be a number > 0, not 'fast'"):
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
    with pytest.raises(FieldsError, match="train.cam must be true or false, not 'maybe'"):
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
    for key, kind, rule in SETTINGS:  # each key takes a new value of its type that its rule allows
        section, name = key.split(".")
        new = another_value(kind, rule, defaults()[section][name])
        text = str(new).lower() if kind is bool else str(new)
        assert apply_overrides(defaults(), [f"{key}={text}"])[section][name] == new


def test_a_saved_config_with_retired_keys_still_reads(tmp_path):
    saved = load_preset("default")
    saved["train"]["fine_samples"] = 0
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert load_preset(str(tmp_path / "config.yaml")) == load_preset("default")


def rejected(key: str, value: object) -> str:
    """The one-line error setting `key` to `value` gives; fails the test when the value is taken."""
    section, name = key.split(".")
    with pytest.raises(FieldsError) as err:
        setting_value(section, name, value)
    message = str(err.value)
    assert message.startswith(f"{key} must be ") and "\n" not in message, message
    return message


def accepted(key: str, value: object) -> object:
    section, name = key.split(".")
    return setting_value(section, name, value)


def test_every_setting_declares_what_it_allows():
    """Numbers have a lower bound, text a fixed set of values (but the viewer's host): a new setting
    without a rule fails here."""
    for key, kind, rule in SETTINGS:
        if kind in (int, float):
            assert rule.ge is not None or rule.gt is not None, f"{key} has no lower bound"
        elif kind is str and key not in FREE_TEXT:
            assert rule.choices, f"{key} has no choices"
        section, name = key.split(".")
        assert accepted(key, defaults()[section][name]) == defaults()[section][name], f"{key}: default refused"


@pytest.mark.parametrize("key,kind,rule", NUMBERS, ids=[s[0] for s in NUMBERS])
def test_bounds_are_accepted_and_values_just_outside_them_rejected(key, kind, rule):
    def step(x: float, direction: int) -> float:
        """The next value of the setting's type from x in this direction."""
        return kind(x + direction) if kind is int else math.nextafter(x, direction * math.inf)

    for bound, inclusive, inward in ((rule.ge, True, 1), (rule.gt, False, 1), (rule.le, True, -1), (rule.lt, False, -1)):
        if bound is None:
            continue
        if inclusive:
            assert accepted(key, kind(bound)) == bound
        else:
            rejected(key, kind(bound))
            accepted(key, step(bound, inward))
        outer = step(bound, -inward)
        if outer != rule.off:
            assert rejected(key, outer).endswith(f", not {outer}")
            with pytest.raises(FieldsError, match=f"^{key} must be "):  # as command-line text too
                apply_overrides(defaults(), [f"{key}={outer!r}"])
    if rule.off is not None:
        assert accepted(key, kind(rule.off)) == rule.off


def inside(kind: type, rule: Rule) -> st.SearchStrategy:
    """Any value within the setting's bounds."""
    lo = rule.ge if rule.ge is not None else rule.gt
    hi = rule.le if rule.le is not None else rule.lt
    if kind is int:
        return st.integers(min_value=lo + (rule.gt is not None), max_value=None if hi is None else hi - (rule.lt is not None))
    return st.floats(min_value=lo, max_value=hi, exclude_min=rule.gt is not None, exclude_max=rule.lt is not None,
                     allow_nan=False, allow_infinity=False)


def outside(kind: type, rule: Rule) -> st.SearchStrategy:
    """Any value below or above the setting's bounds (its off value aside), NaN and infinities."""
    lo = rule.ge if rule.ge is not None else rule.gt
    hi = rule.le if rule.le is not None else rule.lt
    if kind is int:
        below = st.integers(max_value=lo - (rule.ge is not None))
        above = st.nothing() if hi is None else st.integers(min_value=hi + (rule.le is not None))
        return st.one_of(below, above).filter(lambda x: x != rule.off)
    below = st.floats(max_value=lo, exclude_max=rule.ge is not None, allow_nan=False, allow_infinity=False)
    above = st.nothing() if hi is None else st.floats(min_value=hi, exclude_min=rule.le is not None,
                                                      allow_nan=False, allow_infinity=False)
    special = st.sampled_from([math.nan, math.inf, -math.inf])
    return st.one_of(below, above, special).filter(lambda x: x != rule.off)


@pytest.mark.parametrize("key,kind,rule", NUMBERS, ids=[s[0] for s in NUMBERS])
@hypothesis_settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_value_inside_the_declared_range_is_accepted_and_any_outside_rejected(key, kind, rule, data):
    value = data.draw(inside(kind, rule), label="inside")
    taken = accepted(key, value)
    assert taken == value and type(taken) is kind
    rejected(key, data.draw(outside(kind, rule), label="outside"))


@pytest.mark.parametrize("key", [s[0] for s in NUMBERS if s[1] is float])
@pytest.mark.parametrize("text", ["nan", ".nan", "inf", ".inf", "-.inf", "-inf"])
def test_nan_and_infinity_are_rejected(key, text):
    with pytest.raises(FieldsError, match=f"^{key} must be a finite number"):
        apply_overrides(defaults(), [f"{key}={text}"])


@pytest.mark.parametrize("key", [s[0] for s in NUMBERS if s[1] is int])
def test_an_integer_setting_given_a_fraction_is_rejected(key):
    section, name = key.split(".")
    value = defaults()[section][name] + 0.5
    with pytest.raises(FieldsError, match=f"^{key} must be an integer .*, not {value}$"):
        apply_overrides(defaults(), [f"{key}={value}"])
    assert accepted(key, float(defaults()[section][name])) == defaults()[section][name]  # 2000.0 is 2000
    assert type(accepted(key, float(defaults()[section][name]))) is int
    for text in ("nan", "many", "true"):
        rejected(key, yaml.safe_load(text))


CHOICES = [s for s in SETTINGS if s[1] is str and s[2].choices]


@pytest.mark.parametrize("key,kind,rule", CHOICES, ids=[s[0] for s in CHOICES])
def test_text_settings_take_one_of_their_choices(key, kind, rule):
    for choice in rule.choices:
        assert apply_overrides(defaults(), [f"{key}={choice}"])[key.split(".")[0]][key.split(".")[1]] == choice
    message = rejected(key, "bogus")
    assert message == f"{key} must be one of {', '.join(rule.choices)}, not 'bogus'"
    rejected(key, 3)
    rejected(key, None)


def test_the_messages_name_the_key_the_value_and_what_is_allowed():
    cases = {"train.steps=-5": "train.steps must be an integer >= 1, not -5",
             "train.steps=1.5": "train.steps must be an integer >= 1, not 1.5",
             "train.checkpoint_every=0": "train.checkpoint_every must be an integer >= 1, not 0",
             "train.lr=nan": "train.lr must be a finite number > 0, not nan",
             "train.foreground_share=1.5": "train.foreground_share must be a number >= 0 and <= 1, not 1.5",
             "train.holdout_every=1": "train.holdout_every must be an integer >= 2, or 0, not 1",
             "export.mesh_format=stl": "export.mesh_format must be one of ply, obj, glb, not 'stl'",
             "viewer.port=99999": "viewer.port must be an integer >= 0 and <= 65535, not 99999",
             "sfm.backend=sift": "sfm.backend must be one of neural, colmap, global, not 'sift'",
             "viewer.host=3": "viewer.host must be text, not 3",
             "train.steps=[": "train.steps must be an integer >= 1, not '['"}
    for override, message in cases.items():
        with pytest.raises(FieldsError) as err:
            apply_overrides(defaults(), [override])
        assert str(err.value) == message


def test_a_bad_value_in_a_preset_file_names_the_file_and_the_key(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("base: fast\ntrain:\n  steps: 0\n")
    with pytest.raises(FieldsError, match=f"^{preset}: train.steps must be an integer >= 1, not 0$"):
        load_preset(str(preset))
    preset.write_text("base: default\ntrain:\n  lr: .nan\n")
    with pytest.raises(FieldsError, match="train.lr must be a finite number > 0, not nan"):
        load_preset(str(preset))
    preset.write_text("base: default\ntrain:\n  steps: 2000.0\n  lr: 1e-3\n")  # YAML 1.1: 1e-3 is text
    cfg = load_preset(str(preset))
    assert cfg["train"]["steps"] == 2000 and type(cfg["train"]["steps"]) is int and cfg["train"]["lr"] == 1e-3


def test_a_saved_run_config_with_a_bad_value_is_a_one_line_error(tmp_path):
    saved = load_preset("default")
    saved["export"]["mesh_format"] = "stl"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    with pytest.raises(FieldsError, match="export.mesh_format must be one of ply, obj, glb, not 'stl'"):
        load_preset(str(tmp_path / "config.yaml"))


def test_cam_needs_the_mlp_decoder(tmp_path):
    with pytest.raises(FieldsError, match="^train.cam .*needs train.sdf_decoder mlp, not 'rbf'"):
        apply_overrides(defaults(), ["train.cam=true", "train.sdf_decoder=rbf"])
    cfg = apply_overrides(defaults(), ["train.sdf_decoder=rbf", "train.cam=false"])
    assert cfg["train"]["sdf_decoder"] == "rbf"
    preset = tmp_path / "mine.yaml"
    preset.write_text("train:\n  cam: true\n  sdf_decoder: rbf\n")
    with pytest.raises(FieldsError, match="needs train.sdf_decoder mlp"):
        load_preset(str(preset))


def test_every_preset_resolves():
    for name in ("default", "fast", "gpu"):
        cfg = load_preset(name)
        for key, _, _ in SETTINGS:
            section, setting = key.split(".")
            assert accepted(key, cfg[section][setting]) == cfg[section][setting]
