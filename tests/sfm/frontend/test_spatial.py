"""Spatial matching (sfm/frontend/spatial.py, extract.py): GPS positions read from EXIF, and each photo
matched with its nearest neighbours by them (pycolmap's spatial matcher), checked against nearest
neighbours computed here."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pycolmap
import pytest
from PIL import Image
from synthetic import DEMO

from fields.errors import FieldsError
from fields.scene import Scene, View
from sfm.colmap import classical_sfm
from sfm.frontend.extract import (
    FrontEndOptions,
    _match,
    extract_and_match,
    matching_mode,
    upright_images,
)
from sfm.frontend.spatial import GPS_IFD, count_located, gps_position
from sfm.io import read_transforms

LAT0, LON0 = 46.5, 7.25  # degrees
METRES_PER_DEGREE = 6371000.0 * np.pi / 180.0


def dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    d, m = int(value), int((value - int(value)) * 60)
    return float(d), float(m), (value - d - m / 60.0) * 3600.0


def save_with_gps(image: Image.Image, path, lat: float, lon: float, alt: float, orientation: int = 1) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[GPS_IFD] = {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon),
                     5: b"\x00", 6: alt}
    image.save(path, quality=95, exif=exif)


def test_gps_positions_are_read_as_signed_degrees_and_photos_without_them_are_told_apart(tmp_path):
    im = Image.new("RGB", (32, 24), (90, 120, 30))
    save_with_gps(im, tmp_path / "ne.jpg", 46.51234, 7.25678, 512.5)
    save_with_gps(im, tmp_path / "sw.jpg", -33.85, -70.6543, 10.0)
    im.save(tmp_path / "none.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    lat, lon, alt = gps_position(tmp_path / "ne.jpg")
    assert abs(lat - 46.51234) < 1e-6 and abs(lon - 7.25678) < 1e-6 and abs(alt - 512.5) < 1e-6
    lat, lon, _ = gps_position(tmp_path / "sw.jpg")
    assert abs(lat + 33.85) < 1e-6 and abs(lon + 70.6543) < 1e-6
    assert gps_position(tmp_path / "none.jpg") is None and gps_position(tmp_path / "text.jpg") is None
    assert count_located(sorted(tmp_path.iterdir())) == 2


def test_an_upright_copy_of_a_rotated_photo_keeps_its_gps_position(tmp_path):
    (tmp_path / "in").mkdir()
    save_with_gps(Image.new("RGB", (40, 20), (200, 10, 10)), tmp_path / "in" / "a.jpg", 46.5, 7.25, 400.0,
                  orientation=6)
    folder = upright_images(["a.jpg"], tmp_path / "in", tmp_path)
    with Image.open(folder / "a.jpg") as im:
        assert im.size == (20, 40) and im.getexif().get(0x0112, 1) == 1
    assert np.allclose(gps_position(folder / "a.jpg"), gps_position(tmp_path / "in" / "a.jpg"))


def test_large_sets_are_matched_spatially_when_every_photo_has_a_position():
    opts = FrontEndOptions()
    assert matching_mode(300, opts, located=lambda: 300) == "spatial"
    assert matching_mode(300, opts, located=lambda: 299) == "retrieval"
    assert matching_mode(100, opts, located=lambda: 100) == "exhaustive"
    # up to 200 photos, auto never reads the EXIF of every photo
    assert matching_mode(100, opts, located=lambda: 1 // 0) == "exhaustive"
    assert matching_mode(10, replace(opts, matching="spatial"), located=lambda: 10) == "spatial"
    with pytest.raises(FieldsError, match="1 of the 10 photos have none"):
        matching_mode(10, replace(opts, matching="spatial"), located=lambda: 9)
    with pytest.raises(FieldsError, match="spatial_neighbours"):
        matching_mode(10, replace(opts, matching="spatial", spatial_neighbours=0), located=lambda: 10)


def matched_pairs(database) -> set[frozenset[str]]:
    """The image pairs a database's matching tried (those that found no match included), by name."""
    with pycolmap.Database.open(str(database)) as db:
        names = {im.image_id: im.name for im in db.read_all_images()}
        return {frozenset((names[i], names[j])) for i, j in combinations(names, 2) if db.exists_matches(i, j)}


def test_spatial_matching_pairs_each_photo_with_its_nearest_by_gps_and_the_model_registers(tmp_path):
    """The 32 demo views (two rings), each photo tagged with its camera's position (10 m per scene unit,
    jittered by decimetres, on a sphere's degrees): with 8 neighbours, the pairs matched are exactly
    each photo with its 8 nearest (the 9th is at least 1.8 m farther than the 8th), under half of all
    pairs, listed once each in pairs.txt, and COLMAP's mapper registers all 32 from them; within 5 m of
    each other no photo has a partner."""
    scene = read_transforms(DEMO / "transforms.json")
    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(0)
    east_north = {}
    for v in scene.views:
        centre = -v.R.T @ v.t
        east_north[v.path.name] = 10.0 * centre[:2] + rng.normal(0.0, 0.3, 2)
        east, north = east_north[v.path.name]
        lat = LAT0 + north / METRES_PER_DEGREE
        lon = LON0 + east / (METRES_PER_DEGREE * np.cos(np.radians(LAT0)))
        save_with_gps(Image.open(v.path).convert("RGB"), tmp_path / "images" / v.path.name, lat, lon, 500.0 + 10 * centre[2])
    names = sorted(east_north)
    expected = set()
    for a in names:
        dist = {b: np.linalg.norm(east_north[a] - east_north[b]) for b in names if b != a}
        expected |= {frozenset((a, b)) for b in sorted(dist, key=dist.get)[:8]}
    inputs = Scene(scene.cameras, [View(v.name, tmp_path / "images" / v.path.name, 0) for v in scene.views])
    opts = FrontEndOptions(features="classic", matching="spatial", spatial_neighbours=8)
    result = classical_sfm(inputs, tmp_path / "images", tmp_path / "work", opts)
    database = tmp_path / "work" / "database.db"
    assert matched_pairs(database) == expected and len(expected) < len(list(combinations(names, 2))) // 2
    listed = (tmp_path / "work" / "pairs.txt").read_text().splitlines()  # each pair once, in name order
    assert len(listed) == len(expected) and {frozenset(line.split()) for line in listed} == expected
    assert sum(v.registered for v in result.views) == 32
    with pycolmap.Database.open(str(database)) as db:
        db.clear_two_view_geometries()
        db.clear_matches()
    _match(database, replace(opts, spatial_max_distance_m=5.0), False, "spatial")
    assert matched_pairs(database) == set() and (tmp_path / "work" / "pairs.txt").read_text() == ""


def test_spatial_matching_matches_photos_whose_names_hold_spaces(tmp_path):
    """COLMAP reads a pair list's lines as two names split at a space: with such names the pairs go
    through COLMAP's own spatial matcher, and each photo is still matched with its nearest. Six demo
    photos 10 m apart along a street: with 1 neighbour, the pairs are the five between next photos."""
    scene = read_transforms(DEMO / "transforms.json")
    (tmp_path / "images").mkdir()
    views = []
    for k, v in enumerate(scene.views[:6]):
        path = tmp_path / "images" / f"photo {k}.jpg"
        save_with_gps(Image.open(v.path).convert("RGB"), path, LAT0 + 10.0 * k * (1 + 0.1 * k) / METRES_PER_DEGREE,
                      LON0, 500.0)
        views.append(View(v.name, path, 0))
    opts = FrontEndOptions(features="classic", matching="spatial", spatial_neighbours=1)
    extract_and_match(Scene(scene.cameras, views), tmp_path / "images", tmp_path / "database.db", opts)
    assert not (tmp_path / "pairs.txt").exists()
    assert matched_pairs(tmp_path / "database.db") == {frozenset((f"photo {k}.jpg", f"photo {k + 1}.jpg"))
                                                       for k in range(5)}
