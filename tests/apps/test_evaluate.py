"""`fields eval` (apps/evaluate.py): poses against a reference, printed and written as JSON."""

from __future__ import annotations

import json

import numpy as np
from synthetic import DEMO, demo_truth, moved, rotation

from apps.cli import main
from fields.scene import Similarity
from sfm.io import write_transforms


def test_eval_poses_command_prints_and_writes_json(tmp_path, capsys):
    ref = demo_truth()
    pred = moved(ref, Similarity(1.5, rotation([1, 1, 0], 10), np.ones(3)))
    write_transforms(pred, tmp_path / "pred.json")
    assert main(["eval", "poses", str(tmp_path / "pred.json"), str(DEMO / "transforms.json"), "-o", str(tmp_path / "m.json")]) == 0
    assert "registered        32/32" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["registered"] == 32
    assert main(["eval", "poses", str(tmp_path / "missing.json"), str(DEMO / "transforms.json")]) == 2
