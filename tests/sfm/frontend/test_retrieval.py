"""How pairs of images are chosen for matching (sfm/frontend/extract.py, retrieval.py): exhaustively
up to 200 images, by retrieval beyond, and retrieval on the demo scene against exhaustive matching."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pycolmap
import pytest
from synthetic import DEMO

from fields.errors import FieldsError
from fields.scene import Scene, View
from sfm.frontend.extract import FrontEndOptions, extract_and_match, matching_mode
from sfm.io import read_transforms


def test_sets_up_to_200_images_are_matched_exhaustively_larger_ones_by_retrieval():
    """As COLMAP's automatic reconstructor (sequential matching alone pairs each unordered view with its
    neighbours by name only, and misses most of the pairs that matter)."""
    opts = FrontEndOptions()
    assert [matching_mode(n, opts) for n in (2, 100, 200, 201, 5000)] == ["exhaustive"] * 3 + ["retrieval"] * 2
    assert matching_mode(5000, replace(opts, matching="exhaustive")) == "exhaustive"
    assert matching_mode(10, replace(opts, matching="sequential")) == "sequential"
    with pytest.raises(FieldsError, match="matching must be"):
        matching_mode(10, replace(opts, matching="vocab"))
    with pytest.raises(FieldsError, match="retrieval_neighbours"):
        matching_mode(500, replace(opts, retrieval_neighbours=0))


def verified_pairs(database) -> tuple[int, dict[tuple[str, str], int]]:
    """The number of pairs a COLMAP database's matching tried, and inlier matches by (name, name) of
    those verification kept."""
    with pycolmap.Database.open(str(database)) as db:
        names = {im.image_id: im.name for im in db.read_all_images()}
        pair_ids, geometries = db.read_two_view_geometries()
        tried = db.num_matched_image_pairs()
    return tried, {tuple(sorted(names[i] for i in pycolmap.pair_id_to_image_pair(pid))): len(g.inlier_matches)
                   for pid, g in zip(pair_ids, geometries) if len(g.inlier_matches)}


def test_retrieval_finds_most_images_best_partner_adds_their_sequence_neighbours_and_repeats(tmp_path):
    """Retrieval with a visual index built from the set's own descriptors, each image matched to its 3
    most similar: for most images, the partner with which exhaustive matching verifies the most
    inliers is among them (by chance: 3 of 15, 20 %), in a fraction of the pairs. With an overlap of
    1, each image is also matched to the next in name order (video frames). A second run chooses the
    same pairs and verifies the same ones (COLMAP's own retrieval matcher did not: CI once lost a
    pair between two runs)."""
    scene = read_transforms(DEMO / "transforms.json")
    views = Scene(scene.cameras, [View(v.name, v.path, 0) for v in scene.views[:16]])
    names = sorted(v.path.name for v in views.views)
    opts = FrontEndOptions(features="classic", retrieval_neighbours=3)
    runs = {"exhaustive": replace(opts, matching="exhaustive"),
            "retrieval": replace(opts, matching="retrieval", sequential_overlap=0),
            "sequence": replace(opts, matching="retrieval", sequential_overlap=1),
            "again": replace(opts, matching="retrieval", sequential_overlap=0)}
    tried, verified = {}, {}
    for run, run_opts in runs.items():
        (tmp_path / run).mkdir()
        extract_and_match(views, DEMO / "images", tmp_path / run / "database.db", run_opts)
        tried[run], verified[run] = verified_pairs(tmp_path / run / "database.db")
    assert (tmp_path / "retrieval" / "visual_index.bin").is_file()
    assert tried["exhaustive"] == 16 * 15 // 2 and tried["retrieval"] <= 16 * 3
    best = [max((p for p in verified["exhaustive"] if name in p), key=verified["exhaustive"].get) for name in names]
    assert np.mean([p in verified["retrieval"] for p in best]) >= 0.6
    sequence = set(zip(names, names[1:]))
    assert sequence <= set(verified["exhaustive"]) and not sequence <= set(verified["retrieval"])
    assert sequence | set(verified["retrieval"]) <= set(verified["sequence"])
    listed = {run: (tmp_path / run / "pairs.txt").read_text() for run in ("retrieval", "again")}
    assert listed["retrieval"] == listed["again"] and len(listed["retrieval"].splitlines()) == tried["retrieval"]
    # the same pairs verified; their inlier counts may move by a few between runs under load (COLMAP's
    # verification spreads pairs over threads; 105 against 107 was seen once), not more
    assert verified["again"].keys() == verified["retrieval"].keys()
    assert all(abs(verified["again"][p] - n) <= max(5, 0.05 * n) for p, n in verified["retrieval"].items())


def test_retrieval_matches_photos_whose_names_hold_spaces(tmp_path):
    """COLMAP reads a pair list's lines as two names split at a space: with such names, retrieval
    goes through COLMAP's own retrieval matcher, and every pair chosen is still matched."""
    scene = read_transforms(DEMO / "transforms.json")
    images = tmp_path / "images"
    images.mkdir()
    views = []
    for k, v in enumerate(scene.views[:6]):
        (images / f"photo {k}.jpg").write_bytes(v.path.read_bytes())
        views.append(View(v.name, images / f"photo {k}.jpg", 0))
    opts = FrontEndOptions(features="classic", matching="retrieval", retrieval_neighbours=2, sequential_overlap=1)
    extract_and_match(Scene(scene.cameras, views), images, tmp_path / "database.db", opts)
    tried, verified = verified_pairs(tmp_path / "database.db")
    assert not (tmp_path / "pairs.txt").exists()
    assert {(f"photo {k}.jpg", f"photo {k + 1}.jpg") for k in range(5)} <= set(verified) and tried <= 6 * 2 + 5
