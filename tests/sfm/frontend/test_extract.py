"""The front end on the demo scene (sfm/frontend/extract.py): matches read back from pycolmap agree
with the true epipolar geometry, a guessed focal length is no prior, the SIFT peak threshold is
searched on a sample that is then kept, and the rich front end is wanted only for weak views."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pycolmap
from synthetic import DEMO

from fields.scene import Scene, View
from sfm.frontend.extract import (
    FrontEndOptions,
    _extract,
    _image_names,
    extract_and_match,
    extract_more,
    keypoint_counts,
    peak_sample,
    peak_threshold,
    wants_rich,
    weak_views,
)
from sfm.frontend.tracks import build_tracks, match_views
from sfm.geometry.epipolar import fundamental, sampson_error
from sfm.io import read_transforms


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


def test_the_rich_front_end_is_wanted_when_at_least_one_view_in_20_is_weak():
    """A dense set with a weak view or two keeps classic SIFT (lego-100: 1 weak view, all 100 registered
    with it, in a third of the rich front end's time); in a small set one weak view is enough."""
    opts = FrontEndOptions()
    assert not wants_rich([], 10, opts)
    assert wants_rich(["a"], 16, opts) and wants_rich(["a"], 20, opts)
    assert not wants_rich(["a"], 100, opts) and not wants_rich(list("abcd"), 100, opts)
    assert wants_rich(list("abcde"), 100, opts)
    assert wants_rich(["a"], 100, replace(opts, weak_share=0.0)) and not wants_rich([], 100, replace(opts, weak_share=0.0))
