"""Image loading (fields/images.py): the EXIF orientation applied, grey, RGBA and 16-bit images, and
an unreadable, truncated or oversized file (a decompression bomb among them) one clear error, found
from the header without decoding its pixels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile
from synthetic import bad_images, png_bytes

from fields.errors import FieldsError
from fields.images import (
    MAX_PIXELS,
    UnreadableImage,
    check_decodes,
    check_pixels,
    exif_focal_px,
    image_size,
    load_image,
)

READERS = (image_size, load_image, exif_focal_px, check_decodes)
DECODERS = (load_image, check_decodes)  # the readers that go past the header


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


def test_every_kind_of_bad_file_is_one_error_line_naming_it(tmp_path):
    for name, words in bad_images(tmp_path).items():
        for read in DECODERS if name == "truncated.jpg" else READERS:
            with pytest.raises(UnreadableImage) as err:
                read(tmp_path / name)
            message = str(err.value)
            assert isinstance(err.value, FieldsError) and "\n" not in message
            assert str(tmp_path / name) in message and words in message, (read.__name__, message)


def test_a_truncated_photo_has_a_readable_header_but_does_not_decode(tmp_path):
    bad_images(tmp_path)
    assert image_size(tmp_path / "truncated.jpg") == (160, 120)
    with pytest.raises(UnreadableImage, match="truncated"):
        check_decodes(tmp_path / "truncated.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # Pillow would fill the missing half with grey


def test_a_bomb_is_refused_from_its_header_without_decoding_a_pixel(tmp_path, monkeypatch):
    (tmp_path / "bomb.png").write_bytes(png_bytes(20_000, 15_000))  # 300 MP in 40 kB

    def no_decoding(self):
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for read in READERS:
        with pytest.raises(UnreadableImage, match="20000 x 15000 pixels, over the 200-megapixel limit"):
            read(tmp_path / "bomb.png")


def test_the_pixel_limit_is_ours_and_pillow_agrees(tmp_path):
    check_pixels(tmp_path / "a.png", (14_000, 14_000))  # 196 MP: a large photo, not refused
    with pytest.raises(UnreadableImage, match="over the 200-megapixel limit"):
        check_pixels(tmp_path / "a.png", (20_000, 10_001))
    with pytest.raises(UnreadableImage, match="0 x 5 pixels"):
        check_pixels(tmp_path / "a.png", (0, 5))
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS
    (tmp_path / "large.png").write_bytes(png_bytes(14_000, 14_000, idat=b""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning for a photo under our limit
        with Image.open(tmp_path / "large.png") as im:
            assert im.size == (14_000, 14_000)


hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SIGNATURES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"II*\x00", b"MM\x00*", b"BM", b"RIFF\x00\x00\x00\x00WEBP",
              b"GIF89a"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(SIGNATURES), st.binary(max_size=300), st.sampled_from([".png", ".jpg", ".tif", ".bmp", ".webp"]))
def test_any_bytes_read_as_an_image_or_fail_as_one_line(tmp_path, signature, body, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(signature + body)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's notes on corrupt tags
        for read in READERS:
            try:
                read(path)
            except UnreadableImage as exc:
                assert "\n" not in str(exc)
