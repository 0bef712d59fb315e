"""Image loading (fields/images.py): the EXIF orientation applied, grey, RGBA and 16-bit images, and
an unreadable file one clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fields.errors import FieldsError
from fields.images import image_size, load_image


def test_exif_orientation_grey_rgba_and_16_bit(tmp_path):
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert image_size(tmp_path / "rot.jpg") == (20, 40)
    assert load_image(tmp_path / "rot.jpg").shape == (40, 20, 3)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").shape == (8, 8, 3)
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "rgba.png")
    assert load_image(tmp_path / "rgba.png").shape == (8, 8, 4)
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png").max() == pytest.approx(1.0)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(FieldsError):
        load_image(tmp_path / "bad.png")
