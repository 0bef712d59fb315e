"""Matching a list of image pairs chosen beforehand, so that a run repeats.

COLMAP's retrieval and spatial matchers hand each image's pairs to the matcher as they are found: a
pair is found from both of its images and queued twice, and the retrieval queries run on several
threads beside the matching. On a busy machine their results change from run to run (pairs missing
in one run and present in the next, a pair's inlier count changing several-fold), while exhaustive
and sequential matching, which queue each pair once, give the same database every time. Here the pairs are chosen first with pycolmap's own pair
generators, each pair once and in name order, written to `pairs.txt` beside the database, and matched
as one list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pycolmap

Generators = Callable[[pycolmap.Database], list[pycolmap.PairGenerator]]


def match_chosen_pairs(database: Path, generators: Generators, matching: pycolmap.FeatureMatchingOptions,
                       verification: pycolmap.TwoViewGeometryOptions) -> bool:
    """The pairs that the pair generators built on the open database choose, each once, matched with
    geometric verification through `pairs.txt` beside the database (names sorted within each pair and
    down the list). False, choosing and matching nothing, when an image name holds a space: COLMAP
    splits a pair list's lines at spaces."""
    with pycolmap.Database.open(str(database)) as db:
        names = {im.image_id: im.name for im in db.read_all_images()}
        if any(" " in name for name in names.values()):
            return False
        chosen = [pair for generator in generators(db) for pair in generator.all_pairs()]
    pairs = sorted({tuple(sorted((names[a], names[b]))) for a, b in chosen if a != b})
    listed = database.parent / "pairs.txt"
    listed.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    if pairs:
        imported = pycolmap.ImportedPairingOptions()
        imported.match_list_path = str(listed)
        pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=imported,
                                   verification_options=verification, device=pycolmap.Device.cpu)
    return True
