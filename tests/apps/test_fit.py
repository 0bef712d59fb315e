"""`fields fit` (apps/fit.py): a network fitted to an image from the command line."""

from __future__ import annotations

import numpy as np
from PIL import Image

from apps.cli import main


def test_fit_image_command_writes_the_reconstruction_and_prints_psnr(tmp_path, capsys):
    xy = np.stack(np.meshgrid(np.linspace(0, 1, 40), np.linspace(0, 1, 30)), -1)
    Image.fromarray((np.concatenate([xy, xy[..., :1] * xy[..., 1:]], -1) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    assert main(["fit", "image", str(tmp_path / "a.png"), "--field", "dense", "--steps", "50", "--lr", "1e-2",
                 "-o", str(tmp_path / "out.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PSNR ") and float(out.split()[1]) > 20.0
    assert Image.open(tmp_path / "out.png").size == (40, 30)
