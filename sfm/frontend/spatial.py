"""Spatial matching: each photo matched with its nearest neighbours by the GPS position in its EXIF, as
COLMAP's spatial matcher does, for drone and street-level sets too large to match every pair.

pycolmap's image reader stores each photo's EXIF GPS position as a pose prior in the database; its
spatial pairing turns them into Earth-centred coordinates (altitude ignored: GPS heights are the
least reliable part) and pairs each photo with its nearest ones within a distance. This module says
which photos have a position (read with Pillow, before any extraction, to choose the pairing) and
matches the pairs that matcher's pairing chooses.
"""

from __future__ import annotations

from pathlib import Path

import pycolmap
from PIL import Image

from sfm.frontend.pair_list import match_chosen_pairs

GPS_IFD = 0x8825  # EXIF's GPS directory; in it: 1/2 latitude ref/value, 3/4 longitude, 5/6 altitude


def _degrees(dms, ref: str) -> float:
    """Decimal degrees from EXIF's (degrees, minutes, seconds), negative to the south or west."""
    value = float(dms[0]) + float(dms[1]) / 60.0 + float(dms[2]) / 3600.0
    return -value if str(ref).strip().upper() in ("S", "W") else value


def gps_position(path: Path) -> tuple[float, float, float] | None:
    """(latitude, longitude in degrees, altitude in metres or 0) from a photo's EXIF, None without a
    latitude and longitude (or for a file Pillow cannot read)."""
    try:
        with Image.open(path) as im:
            gps = im.getexif().get_ifd(GPS_IFD)
    except (OSError, ValueError, SyntaxError):
        return None
    if not all(k in gps for k in (1, 2, 3, 4)):
        return None
    try:
        lat, lon = _degrees(gps[2], gps[1]), _degrees(gps[4], gps[3])
        alt = float(gps.get(6, 0.0)) * (-1.0 if gps.get(5) in (1, b"\x01") else 1.0)
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return None
    return lat, lon, alt


def count_located(paths: list[Path]) -> int:
    """How many of the photos carry a GPS position."""
    return sum(gps_position(p) is not None for p in paths)


def match_spatially(database: Path, neighbours: int, max_distance_m: float,
                    matching: pycolmap.FeatureMatchingOptions, verification: pycolmap.TwoViewGeometryOptions) -> None:
    """Each photo matched with its `neighbours` nearest by GPS position within max_distance_m metres,
    with geometric verification: the pairs are chosen first and matched as a list (sfm/frontend/pair_list.py)."""
    pairing = pycolmap.SpatialPairingOptions()
    pairing.max_num_neighbors = neighbours
    pairing.max_distance = max_distance_m
    pairing.ignore_z = True
    if not match_chosen_pairs(database, lambda db: [pycolmap.SpatialPairGenerator(pairing, db)], matching,
                              verification):  # names with spaces: COLMAP's own spatial matcher
        pycolmap.match_spatial(database, matching_options=matching, pairing_options=pairing,
                               verification_options=verification, device=pycolmap.Device.cpu)
