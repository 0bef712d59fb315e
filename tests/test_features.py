"""The front end on the demo scene: matches read back from pycolmap agree with the true geometry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pycolmap
import pytest
from conftest import DEMO

from fields.errors import FieldsError
from fields.scene import Scene, View
from sfm.frontend.extract import (
    FrontEndOptions,
    _extract,
    _image_names,
    extract_and_match,
    extract_more,
    keypoint_counts,
    matching_mode,
    peak_sample,
    peak_threshold,
    wants_rich,
    weak_views,
)
from sfm.frontend.tracks import Correspondences, build_tracks, match_views
from sfm.geometry.epipolar import fundamental, sampson_error
from sfm.io import read_transforms


def test_tracks_join_matches_and_leave_out_a_match_that_would_join_two_keypoints_of_a_view():
    kp = [np.zeros((5, 2)) for _ in range(3)]
    pairs = {(0, 1): np.array([[0, 1], [2, 2]]), (1, 2): np.array([[1, 4], [3, 0]]), (0, 2): np.array([[2, 3]])}

    def as_sets(pairs):
        return sorted(sorted(map(tuple, t.tolist())) for t in build_tracks(Correspondences(kp, pairs)))

    # (0,0)-(1,1)-(2,4) is one track; (0,2)-(1,2)-(2,3) another; (1,3)-(2,0) a pair
    tracks = [[(0, 0), (1, 1), (2, 4)], [(0, 2), (1, 2), (2, 3)], [(1, 3), (2, 0)]]
    assert as_sets(pairs) == tracks
    # a wrong match (0,0)-(2,3) chains the first two tracks into one component holding two keypoints
    # of each view: the match that would join them is left out, the tracks stay (they were dropped)
    pairs[(0, 2)] = np.array([[2, 3], [0, 3]])
    assert as_sets(pairs) == tracks
    # joined in order of the pairs' match counts: the stronger pair's match wins the conflict
    pairs = {(0, 1): np.array([[0, 1], [2, 2], [4, 4]]), (1, 2): np.array([[1, 4], [3, 0]]), (0, 2): np.array([[2, 4]])}
    assert as_sets(pairs) == [[(0, 0), (1, 1), (2, 4)], [(0, 2), (1, 2)], [(0, 4), (1, 4)], [(1, 3), (2, 0)]]
    pairs[(1, 2)], pairs[(0, 2)] = np.array([[1, 4]]), np.array([[2, 4], [3, 3]])
    assert as_sets(pairs) == [[(0, 0), (1, 1)], [(0, 2), (1, 2), (2, 4)], [(0, 3), (2, 3)], [(0, 4), (1, 4)]]


def test_demo_matches_satisfy_the_true_epipolar_geometry(tmp_path):
    scene = read_transforms(DEMO / "transforms.json")
    corr, _ = match_views(scene, DEMO / "images", tmp_path, FrontEndOptions())
    assert all(len(k) > 300 for k in corr.keypoints)
    assert len(corr.pairs) > 100
    K = scene.cameras[0].K
    errs = []
    for (i, j), m in list(corr.pairs.items())[:40]:
        a, b = scene.views[i], scene.views[j]
        F = fundamental(K, (a.R, a.t), K, (b.R, b.t))
        errs.append(sampson_error(F, corr.keypoints[i][m[:, 0]], corr.keypoints[j][m[:, 1]]))
    assert np.median(np.concatenate(errs)) < 1.0  # pixels from the true epipolar geometry
    # every view has verified pairs enough: "auto" kept COLMAP's classic front end (no rich pass)
    assert weak_views(tmp_path / "database.db", FrontEndOptions().strong_pair) == []
    tracks = build_tracks(corr)
    assert len(tracks) > 500 and max(len(t) for t in tracks) >= 4


def test_a_guessed_focal_length_is_not_given_to_colmap_as_a_prior(tmp_path):
    """Photos without EXIF get a default focal length; COLMAP must estimate it rather than trust it
    (as COLMAP's own reader does), while a known one stays a prior."""
    scene = read_transforms(DEMO / "transforms.json")
    for known in (True, False):
        cam = replace(scene.cameras[0], focal_known=known)
        views = [View(v.name, v.path, 0) for v in scene.views[:3]]
        database = tmp_path / f"{known}" / "database.db"
        database.parent.mkdir()
        extract_and_match(Scene([cam], views), DEMO / "images", database, FrontEndOptions(features="classic"))
        with pycolmap.Database.open(str(database)) as db:
            cams = db.read_all_cameras()
        assert len(cams) == 1 and cams[0].has_prior_focal_length == known
        assert cams[0].params[0] == scene.cameras[0].K[0, 0]


def test_the_peak_threshold_search_runs_classic_sift_on_a_sample_and_follows_its_keypoint_counts(tmp_path):
    """The peak threshold is searched with classic SIFT (a fraction of the rich one's cost) on a few
    images spread through the set, lowered while keypoints are few and lowering adds >= 20 %; the
    classic detector stands for the rich one because both find about as many keypoints at a threshold."""
    scene = read_transforms(DEMO / "transforms.json")
    names = _image_names(scene, DEMO / "images")
    assert peak_sample(names, 4) == [names[0], names[10], names[21], names[31]]
    assert peak_sample(names[:3], 4) == names[:3]
    sample = peak_sample(names, 3)
    views = Scene(scene.cameras, [View(n, DEMO / "images" / n, 0) for n in sample])
    db = tmp_path / "database.db"
    peak = pycolmap.FeatureExtractionOptions().sift.peak_threshold
    opts = FrontEndOptions(peak_sample=3)
    assert peak_threshold(scene, DEMO / "images", names, db, replace(opts, min_keypoints=0), peak) == (peak, [])
    assert not db.exists()  # nothing extracted
    # the sample's SIFT stays in the database, which holds every image in name order, for the rest to join
    assert peak_threshold(scene, DEMO / "images", names, db, replace(opts, min_keypoints=1), peak) == (peak, sample)
    assert keypoint_counts(db).tolist() == [int(n in sample) * keypoint_counts(db, [n])[0] for n in names]
    with pycolmap.Database.open(str(db)) as d:
        assert [im.name for im in sorted(d.read_all_images(), key=lambda im: im.image_id)] == names
    assert peak_threshold(views, DEMO / "images", sample, db, replace(opts, min_keypoints=1), peak) == (peak, sample)
    counts = {p: np.median(_extract(views, DEMO / "images", sample, db, opts, False, p)) for p in (peak, peak / 3)}
    expected = peak / 9 if counts[peak / 3] >= 1.2 * counts[peak] else peak / 3
    assert peak_threshold(scene, DEMO / "images", names, db, replace(opts, min_keypoints=10**6), peak)[0] == expected
    rich = np.median(_extract(views, DEMO / "images", sample, db, opts, True, peak))
    assert abs(rich / counts[peak] - 1.0) < 0.3


def test_the_sample_extracted_for_the_peak_threshold_is_not_extracted_again(tmp_path):
    """The front end keeps the sample's SIFT from the peak-threshold search and extracts the other images
    into the same database: the same images, cameras, keypoints and descriptors as one extraction of all."""
    scene = read_transforms(DEMO / "transforms.json")
    views = Scene(scene.cameras, [View(v.name, v.path, 0) for v in scene.views[:6]])
    names = _image_names(views, DEMO / "images")
    opts = FrontEndOptions(peak_sample=3, features="classic")
    peak = pycolmap.FeatureExtractionOptions().sift.peak_threshold / 3
    once, reused = tmp_path / "once.db", tmp_path / "reused.db"
    _extract(views, DEMO / "images", names, once, opts, False, peak)
    _extract(views, DEMO / "images", names, reused, opts, False, peak, only=names[::2])
    extract_more(views, DEMO / "images", names[1::2], reused, opts, peak)

    def content(path):
        with pycolmap.Database.open(str(path)) as db:
            images = sorted(db.read_all_images(), key=lambda im: im.image_id)
            return ([(im.name, im.camera_id) for im in images], [list(c.params) for c in db.read_all_cameras()],
                    [(db.read_keypoints(im.image_id), db.read_descriptors(im.image_id).data) for im in images])

    (names_a, cams_a, feats_a), (names_b, cams_b, feats_b) = content(once), content(reused)
    assert names_a == names_b and [n for n, _ in names_a] == names and cams_a == cams_b
    for (ka, da), (kb, db_) in zip(feats_a, feats_b):
        assert len(ka) > 100 and np.array_equal(ka, kb) and np.array_equal(da, db_)


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
    same pairs and verifies the same matches (COLMAP's own retrieval matcher did not: CI once lost a
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
    assert verified["again"] == verified["retrieval"]


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


def test_the_rich_front_end_is_wanted_when_at_least_one_view_in_20_is_weak():
    """A dense set with a weak view or two keeps classic SIFT (lego-100: 1 weak view, all 100 registered
    with it, in a third of the rich front end's time); in a small set one weak view is enough."""
    opts = FrontEndOptions()
    assert not wants_rich([], 10, opts)
    assert wants_rich(["a"], 16, opts) and wants_rich(["a"], 20, opts)
    assert not wants_rich(["a"], 100, opts) and not wants_rich(list("abcd"), 100, opts)
    assert wants_rich(list("abcde"), 100, opts)
    assert wants_rich(["a"], 100, replace(opts, weak_share=0.0)) and not wants_rich([], 100, replace(opts, weak_share=0.0))
