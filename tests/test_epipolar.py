"""Epipolar checks (sfm/geometry/epipolar.py) and what the neural SfM does with them: a pose placed through a
wrong pair is withdrawn once its other neighbours outvote it, and so is a view placed only against
withdrawn ones; a wrong pair between right poses is marked bad instead."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from fields.scene import Camera, look_at
from sfm.frontend.tracks import Correspondences, build_tracks
from sfm.geometry.epipolar import fundamental, sampson_error
from sfm.geometry.triangulation import reproject
from sfm.neural.loop import close_loop
from sfm.neural.mapper import register_pending
from sfm.neural.options import NeuralSfMOptions
from sfm.neural.refine import polish_and_refit
from sfm.neural.register import checked_pose, register_next, surface_correspondences
from sfm.neural.start import gauge_views
from sfm.neural.state import Reconstruction, ViewReport, mean_error, track_lookup
from sfm.neural.surface import fit_sdf_to_points, make_sdf
from sfm.neural.vote import epipolar_support
from sfm.neural.withdraw import (
    drop_far_points,
    withdraw_and_retriangulate,
    withdraw_contradicted_views,
)
from sfm.pose_metrics import rotation_angle_deg


def ring(n: int = 8, points: int = 200, seed: int = 0, distance: float = 3.0, fov_deg: float = 60.0):
    """n cameras on a ring around a cloud of points, every point seen (and matched) in every view."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-0.5, 0.5, (points, 3))
    cam = Camera.from_fov(400, 300, np.radians(fov_deg))
    poses = []
    for k in range(n):
        a = 2 * np.pi * k / n
        c = distance * np.array([np.cos(a), np.sin(a), 0.8 / 3])
        poses.append(look_at(c, np.zeros(3), np.array([0.0, 0.0, 1.0])))
    kps = [reproject(cam.K, R, t, X)[0] for R, t in poses]
    return cam, poses, kps, X


def test_sampson_error_is_zero_on_true_matches_and_grows_off_the_epipolar_line():
    cam, poses, kps, _ = ring()
    F = fundamental(cam.K, poses[0], cam.K, poses[1])
    x1, x2 = kps[0], kps[1]
    assert np.abs(np.sum(np.c_[x2, np.ones(len(x2))] * (np.c_[x1, np.ones(len(x1))] @ F.T), 1)).max() < 1e-6
    assert sampson_error(F, x1, x2).max() < 1e-6
    line = np.c_[x1, np.ones(len(x1))] @ F.T  # epipolar lines in image 2
    normal = line[:, :2] / np.linalg.norm(line[:, :2], axis=1, keepdims=True)
    along = np.stack([-normal[:, 1], normal[:, 0]], 1)
    assert sampson_error(F, x1, x2 + 3.0 * along).max() < 0.05  # sliding along the line costs nothing
    e1 = sampson_error(F, x1, x2 + 1.0 * normal)
    e2 = sampson_error(F, x1, x2 + 2.0 * normal)
    # 1 px off the line in one image: between 1/sqrt(2) and 1 px (Sampson spreads it over both images)
    assert (e1 > 0.5).all() and (e1 <= 1.0 + 1e-6).all()
    np.testing.assert_allclose(e2, 2 * e1, rtol=0.05)


def reconstruction(cam, poses, kps, pairs) -> Reconstruction:
    corr = Correspondences(kps, pairs)
    tracks = build_tracks(corr)
    rec = Reconstruction([cam] * len(poses), tracks, track_lookup(corr, tracks), corr, make_sdf(0),
                         camera_index=[0] * len(poses))
    rec.xyz = np.zeros((len(tracks), 3))
    rec.poses = {v: p for v, p in enumerate(poses)}
    rec.reports = {v: ViewReport(True) for v in rec.poses}
    rec.gauge = (0, 1)
    return rec


def neighbour_pairs(n: int, points: int) -> dict[tuple[int, int], np.ndarray]:
    ident = np.stack([np.arange(points)] * 2, 1)
    return {(i, j): ident for i in range(n) for j in range(i + 1, n) if (j - i) % n in (1, 2, n - 1, n - 2)}


def test_a_pose_contradicting_its_neighbours_is_withdrawn_and_its_points_kept_only_where_seen_twice():
    cam, poses, kps, _ = ring()
    pairs = neighbour_pairs(len(poses), len(kps[0]))
    wrong = list(poses)
    R, t = poses[5]
    turn = Rotation.from_euler("y", 40, degrees=True).as_matrix()
    wrong[5] = (turn @ R, turn @ t)
    rec = reconstruction(cam, wrong, kps, pairs)
    dropped = withdraw_contradicted_views(rec, NeuralSfMOptions())
    assert dropped == [5]
    assert 5 not in rec.poses and len(rec.poses) == 7
    assert not rec.reports[5].registered and rec.reports[5].dropped == 1 and "epipolar" in rec.reports[5].reason
    assert rec.bad_pairs == set()
    # with the right pose nothing is withdrawn
    rec = reconstruction(cam, poses, kps, pairs)
    assert withdraw_contradicted_views(rec, NeuralSfMOptions()) == [] and len(rec.poses) == 8


def test_a_wrong_pair_between_right_poses_becomes_a_bad_pair():
    cam, poses, kps, _ = ring()
    pairs = neighbour_pairs(len(poses), len(kps[0]))
    shuffled = pairs[(2, 3)].copy()
    shuffled[:, 1] = np.random.default_rng(1).permutation(shuffled[:, 1])  # matches of repeated structure
    pairs[(2, 3)] = shuffled
    rec = reconstruction(cam, poses, kps, pairs)
    assert withdraw_contradicted_views(rec, NeuralSfMOptions()) == []
    assert rec.bad_pairs == {(2, 3)}
    assert rec.pair_matches(2, 3) is None and rec.pair_matches(3, 4) is not None


def test_a_view_placed_only_against_a_withdrawn_one_is_withdrawn_too_and_never_fixes_the_gauge():
    """lego-25's look-alike pair: view 0 matches only view 7, and both were placed together, turned
    away from the rest; 7's other neighbours outvote it, and then 0 has nothing left to stand on."""
    cam, poses, kps, _ = ring()
    n = len(kps[0])
    pairs = {p: m for p, m in neighbour_pairs(len(poses), n).items() if 0 not in p and p != (1, 7)}
    alike = np.random.default_rng(5).uniform(-0.5, 0.5, (100, 3))  # what only 0 and 7 match
    turn = Rotation.from_euler("x", 30, degrees=True).as_matrix()  # the world tilted under views 0 and 7
    wrong = [(R @ turn.T, t) if v in (0, 7) else (R, t) for v, (R, t) in enumerate(poses)]
    kps = list(kps)
    kps[0] = reproject(cam.K, *poses[0], alike)[0]
    kps[7] = np.concatenate([kps[7], reproject(cam.K, *poses[7], alike)[0]])
    pairs[(0, 7)] = np.stack([np.arange(100), n + np.arange(100)], 1)
    rec = reconstruction(cam, wrong, kps, pairs)
    rec.gauge = gauge_views(rec)
    assert 0 not in rec.gauge and 7 not in rec.gauge
    assert withdraw_contradicted_views(rec, NeuralSfMOptions()) == [7, 0]
    assert "withdrawn" in rec.reports[0].reason and "epipolar" in rec.reports[7].reason
    assert sorted(rec.poses) == [1, 2, 3, 4, 5, 6]
    # placed right, both stay
    rec = reconstruction(cam, poses, kps, pairs)
    rec.gauge = gauge_views(rec)
    assert withdraw_contradicted_views(rec, NeuralSfMOptions()) == [] and len(rec.poses) == 8


def test_neighbours_vote_with_the_weight_of_their_matches():
    """lego-25's r_72 (one seed): placed agreeing with two look-alike pairs of few matches and against
    two right pairs of many, a tie by count. Weighed by matches, the right pairs win: the wrong pose is
    withdrawn and the right one stays."""
    cam, poses, kps, X = ring()
    turn = Rotation.from_euler("y", 40, degrees=True).as_matrix()
    R, t = poses[5]
    wrong = (turn @ R, turn @ t)
    look_alike = np.arange(40)  # the points view 5's look-alike matches see where the wrong pose puts them
    kps = list(kps)
    kps[5] = kps[5].copy()
    kps[5][look_alike] = reproject(cam.K, *wrong, X[look_alike])[0]
    pairs = {p: m for p, m in neighbour_pairs(len(poses), len(X)).items() if 5 not in p}
    rest = np.arange(40, len(X))
    for p in ((4, 5), (5, 6)):
        pairs[p] = np.stack([rest] * 2, 1)
    for p in ((3, 5), (5, 7)):
        pairs[p] = np.stack([look_alike] * 2, 1)
    placed = list(poses)
    placed[5] = wrong
    rec = reconstruction(cam, placed, kps, pairs)
    assert withdraw_contradicted_views(rec, NeuralSfMOptions()) == [5]
    assert rec.bad_pairs == set()
    rec = reconstruction(cam, poses, kps, pairs)
    assert withdraw_contradicted_views(rec, NeuralSfMOptions()) == []
    assert rec.bad_pairs == {(3, 5), (5, 7)}


def test_a_view_outnumbered_by_look_alike_points_is_registered_from_one_neighbour_at_a_time():
    """lego-25's r_72 (one seed): the points traced from a look-alike neighbour outnumber those of the
    right one, so PnP on all of them finds the look-alike pose, which the weighted vote refuses; PnP on
    the best-matched neighbour's points alone finds the right one. A sphere is the surface."""
    cam, ring_poses, _, _ = ring()
    truth, right, alike = ring_poses[0], ring_poses[1], ring_poses[7]
    rng = np.random.default_rng(3)
    n = rng.normal(size=(4000, 3))
    S = 0.5 * n / np.linalg.norm(n, axis=1, keepdims=True)
    def facing(P, pose):  # sphere points whose outward normal faces the camera
        return (P * (-pose[0].T @ pose[1] - P)).sum(1) > 0.05
    on = S[facing(S, truth) & facing(S, right)][:40]
    off = rng.uniform(-2.0, 2.0, (400, 3))
    off = off[np.linalg.norm(off, axis=1) > 1.2][:60]  # matched structure off the surface: no traced point
    seen = S[facing(S, alike)][:80]
    turn = Rotation.from_euler("z", 60, degrees=True).as_matrix()
    wrong = (truth[0] @ turn.T, truth[1])  # where the look-alike matches put view 0
    both = np.concatenate([on, off])
    kps = [np.concatenate([reproject(cam.K, *truth, both)[0], reproject(cam.K, *wrong, seen)[0]]),
           reproject(cam.K, *right, both)[0], reproject(cam.K, *alike, seen)[0]]
    pairs = {(0, 1): np.stack([np.arange(100)] * 2, 1), (0, 2): np.stack([np.arange(100, 180), np.arange(80)], 1)}
    rec = reconstruction(cam, [truth, right, alike], kps, pairs)
    rec.sdf = SimpleNamespace(sdf=lambda x: x.norm(dim=-1) - 0.5)
    del rec.poses[0]
    rec.reports = {v: ViewReport(True) for v in rec.poses}
    opts = NeuralSfMOptions()
    x, X = surface_correspondences(rec, 0)
    assert len(x) > 110  # 40 traced from the right neighbour, 80 from the look-alike one
    res, why = checked_pose(rec, 0, x, X, "points", opts)
    assert res is None and "epipolar" in why
    assert register_next(rec, [0], opts) == 0
    R, t = rec.poses[0]
    assert rotation_angle_deg(R @ truth[0].T) < 0.1


def test_a_view_is_registered_from_its_tracks_points_before_points_traced_onto_a_rough_surface():
    """The Middlebury dino (one seed): a long lens magnifies the SDF's misfit, so the points traced onto
    the surface from the neighbours' rays land pixels away from the matched keypoints and outnumber the
    tracks' own points; PnP on the tracks' points alone (on the level set within tau) finds the pose."""
    K = np.array([[2500.0, 0, 160], [0, 2500.0, 120], [0, 0, 1]])
    cam = Camera(K, 320, 240)
    poses = []
    for a in (0.0, 45.0, -45.0):
        c = 12 * np.array([np.sin(np.radians(a)), 0.0, -np.cos(np.radians(a))])
        poses.append(look_at(c, np.zeros(3), np.array([0.0, -1.0, 0.0])))
    rng = np.random.default_rng(0)
    n = rng.normal(size=(3000, 3))
    S = 0.54 * n / np.linalg.norm(n, axis=1, keepdims=True)  # the surface; the SDF's sphere is 0.04 smaller
    faces = np.all([(S * (-R.T @ t - S)).sum(1) > 0.1 for R, t in poses], axis=0)
    S = S[faces][:400]
    kps = [reproject(cam.K, R, t, S)[0] for R, t in poses]
    ident = np.stack([np.arange(len(S))] * 2, 1)
    rec = reconstruction(cam, poses, kps, {(0, 1): ident, (0, 2): ident, (1, 2): ident})
    rec.sdf = SimpleNamespace(sdf=lambda x: x.norm(dim=-1) - 0.5)
    rec.xyz = np.full((len(rec.tracks), 3), np.nan)
    for tid, track in enumerate(rec.tracks):
        if track[0, 1] < 100:  # 100 triangulated tracks, the other 300 not yet
            rec.xyz[tid] = S[track[0, 1]]
    truth = poses[0]
    del rec.poses[0]
    rec.reports = {v: ViewReport(True) for v in rec.poses}
    opts = NeuralSfMOptions(tau=0.05)
    assert len(surface_correspondences(rec, 0)[0]) > 400
    assert register_next(rec, [0], opts) == 0
    R, t = rec.poses[0]
    assert rotation_angle_deg(R @ truth[0].T) < 0.1


def sphere_ring(turned: int) -> tuple[Reconstruction, list, np.ndarray]:
    """The ring around points on a sphere of radius 0.5 (the SDF analytic, no point placed yet), view
    `turned` placed 40 deg off; and the true poses and points."""
    cam, poses, _, _ = ring()
    rng = np.random.default_rng(1)
    n = rng.normal(size=(200, 3))
    X = 0.5 * n / np.linalg.norm(n, axis=1, keepdims=True)
    kps = [reproject(cam.K, R, t, X)[0] for R, t in poses]
    placed = list(poses)
    turn = Rotation.from_euler("y", 40, degrees=True).as_matrix()
    placed[turned] = (turn @ poses[turned][0], turn @ poses[turned][1])
    rec = reconstruction(cam, placed, kps, neighbour_pairs(len(poses), len(X)))
    rec.sdf = SimpleNamespace(sdf=lambda x: x.norm(dim=-1) - 0.5)
    rec.xyz = np.full((len(rec.tracks), 3), np.nan)
    return rec, poses, X


def test_the_tracks_a_withdrawn_view_took_with_it_are_triangulated_again():
    """The bundle adjustment after the global start drops every point a misplaced view reprojects
    badly (the Middlebury dino, one seed: all of dinoSR0014's); once that view is withdrawn, its
    neighbours' matches give those tracks their points back, from the poses that stayed."""
    rec, _, X = sphere_ring(turned=5)  # every track is seen by view 5, and none has a point
    assert withdraw_and_retriangulate(rec, NeuralSfMOptions()) == [5]
    assert rec.has_point().all()
    truth = np.array([X[track[0, 1]] for track in rec.tracks])
    np.testing.assert_allclose(rec.xyz, truth, atol=1e-6)


def test_a_view_the_last_vote_withdraws_is_registered_again():
    """The dino ring (one seed): dinoSR0014, placed again by PnP as the last view, outvoted
    dinoSR0013, which stayed unregistered. With nothing pending, the vote still runs, and the view
    it withdraws is registered again, by PnP on the points the others give its tracks."""
    rec, truth, _ = sphere_ring(turned=5)
    registered = []
    register_pending(rec, [], NeuralSfMOptions(), lambda v: registered.append(v) or [])
    assert registered == [5] and sorted(rec.poses) == list(range(8))
    assert rec.reports[5].registered and rec.reports[5].dropped == 1
    R, t = rec.poses[5]
    assert rotation_angle_deg(R @ truth[5][0].T) < 0.1
    np.testing.assert_allclose(-R.T @ t, -truth[5][0].T @ truth[5][1], atol=1e-3)


def test_a_pose_that_fits_one_pair_but_not_the_points_other_views_place_is_withdrawn():
    """The Middlebury dino (one seed): a long lens let dinoSR0013 sit mirrored and still fit its 86
    matches with dinoSR0012, which outvoted its 85 with dinoSR0014. Here view 5 takes the twisted pair
    of its pose relative to view 4 (turned 180 deg about their baseline: the same essential matrix), so
    the pair with 4 agrees and outvotes the one with 6; the points the other views triangulate do not
    reproject into it."""
    cam, poses, kps, _ = ring()
    n = len(kps[0])
    pairs = {p: m for p, m in neighbour_pairs(len(poses), n).items() if 5 not in p}
    pairs[(4, 5)] = np.stack([np.arange(86)] * 2, 1)
    pairs[(5, 6)] = np.stack([np.arange(86, 171)] * 2, 1)
    (R4, t4), (R5, t5) = poses[4], poses[5]
    R_rel = R5 @ R4.T
    b = t5 - R_rel @ t4
    b = b / np.linalg.norm(b)
    twist = 2 * np.outer(b, b) - np.eye(3)  # 180 deg about the baseline, in view 5's frame
    placed = list(poses)
    placed[5] = (twist @ R5, twist @ R_rel @ t4 + (t5 - R_rel @ t4))
    rec = reconstruction(cam, placed, kps, pairs)
    support = epipolar_support(rec, 5, placed[5], NeuralSfMOptions())
    assert support[4] > 0.99 and support[6] < 0.01  # 86 matches for, 85 against
    assert withdraw_contradicted_views(rec, NeuralSfMOptions()) == [5]
    assert "track check" in rec.reports[5].reason
    # placed right, it stays
    rec = reconstruction(cam, poses, kps, pairs)
    assert withdraw_contradicted_views(rec, NeuralSfMOptions()) == []


def test_points_the_classical_polish_leaves_far_from_an_observation_or_behind_a_view_are_dropped():
    """Ceres moves free points under a robust loss: a point can end far from one observation, or behind
    a view that observes it (lego, 100 views: a mean reprojection error of inf px). Such points go, as
    the neural BA drops them, and the mean error stays finite."""
    cam, poses, kps, X = ring()
    kps[3] = kps[3].copy()
    kps[3][7] += 40.0  # view 3 sees point 7 40 px off; the other seven views agree on it
    rec = reconstruction(cam, poses, kps, neighbour_pairs(len(poses), len(X)))
    truth = np.array([X[track[0, 1]] for track in rec.tracks])
    rec.xyz = truth.copy()
    polish_and_refit(rec, NeuralSfMOptions(), refit=False)
    kept = rec.has_point()
    assert [int(rec.tracks[k][0, 1]) for k in np.flatnonzero(~kept)] == [7]
    assert mean_error(rec) < 0.01
    R0, t0 = rec.poses[0]
    behind = int(np.flatnonzero(kept)[0])
    rec.xyz[behind] = -R0.T @ t0 - 2.0 * R0[2]  # two units behind view 0, which observes it
    assert drop_far_points(rec, 4.0) == 1 and not rec.has_point()[behind]
    assert np.isfinite(mean_error(rec))


def two_halves(twist_deg: float, look_alike: bool) -> tuple[Reconstruction, list, NeuralSfMOptions]:
    """Views 0-2 and 3, 5-7 of a ring see two sets of points on a sphere (160 and 120), each matched
    within its half; view 4, unregistered, sees and matches both, as many matches with each half (480),
    so whichever half it agrees with, the other outvotes it. Either the ring is open (no other match
    between the halves) and its second half turned by twist_deg about the x axis with its points, or
    it is closed (views 2 and 3 match 60 points more) and view 4's matches with the second half are of
    look-alike structure elsewhere. The SDF is fitted to the sphere. A long lens (1500 px), as the
    dino's: with a short one a pose fits both halves' epipolar geometry nearly as well."""
    cam, poses, _, _ = ring(distance=8.0, fov_deg=15.0)
    rng = np.random.default_rng(2)
    n = rng.normal(size=(340, 3))
    S = 0.5 * n / np.linalg.norm(n, axis=1, keepdims=True)
    half_a, half_b, v = [0, 1, 2], [3, 5, 6, 7], 4
    pa, pb, seam = S[:160], S[160:280], S[280:]
    turn = Rotation.from_euler("x", twist_deg, degrees=True).as_matrix()
    seen = {w: pa for w in half_a} | {w: pb for w in half_b}  # each view's keypoints' true points
    model = {w: pa for w in half_a} | {w: pb @ turn.T for w in half_b}  # and where the model has them
    seen[v] = np.concatenate([pa, Rotation.from_euler("z", 60, degrees=True).apply(pb) if look_alike else pb])
    ka, kb, ks = np.arange(160), np.arange(120), np.arange(60)
    pairs = {(i, j): np.stack([ka, ka], 1) for i in half_a for j in half_a if i < j}
    pairs |= {(i, j): np.stack([kb, kb], 1) for i in half_b for j in half_b if i < j}
    pairs |= {(w, v): np.stack([ka, ka], 1) for w in half_a}
    pairs |= {(min(v, w), max(v, w)): np.stack([160 + kb, kb], 1)[:, ::1 if w > v else -1] for w in half_b}
    if look_alike:
        for w in (2, 3):
            seen[w], model[w] = np.concatenate([seen[w], seam]), np.concatenate([model[w], seam])
        pairs[(2, 3)] = np.stack([160 + ks, 120 + ks], 1)
    kps = [reproject(cam.K, R, t, seen[w])[0] for w, (R, t) in enumerate(poses)]
    placed = [(R @ turn.T, t) if w in half_b else (R, t) for w, (R, t) in enumerate(poses)]
    rec = reconstruction(cam, placed, kps, pairs)
    del rec.poses[v]
    rec.reports[v] = ViewReport()
    first = [tr[tr[:, 0] != v][0] for tr in rec.tracks]  # an observation by a registered view
    rec.xyz = np.array([model[w][k] for w, k in first])
    fit_sdf_to_points(rec.sdf, S, 300)
    return rec, poses, NeuralSfMOptions(tau=0.05)


def relative_rotation_errors(rec: Reconstruction, truth: list) -> np.ndarray:
    """Degrees between each registered view's rotation relative to view 0 and the true one."""
    R0, T0 = rec.poses[0][0], truth[0][0]
    return np.array([rotation_angle_deg((R @ R0.T) @ (truth[w][0] @ T0.T).T) for w, (R, _) in rec.poses.items()])


def test_a_view_outvoted_by_a_twisted_half_of_an_open_ring_closes_it_on_trial():
    """The Middlebury dino (two seeds): GLOMAP left the ring open, its halves 4.5-6.7 deg apart, and
    dinoSR0013 lost the vote of the turned half whatever its pose. Placed on trial, one bundle
    adjustment closes the ring and nothing contradicts any more: it is kept."""
    rec, truth, opts = two_halves(twist_deg=10.0, look_alike=False)
    assert register_next(rec, [4], opts) is None and "epipolar" in rec.reports[4].reason
    assert relative_rotation_errors(rec, truth).max() > 9.0
    assert close_loop(rec, [4], opts) == 4
    assert rec.reports[4].registered and sorted(rec.poses) == list(range(8))
    assert relative_rotation_errors(rec, truth).max() < 0.05


def test_a_view_outvoted_by_right_poses_is_not_kept_and_the_model_is_put_back():
    """The ring is closed and right, and view 4's matches with its second half are look-alikes: the
    vote against it is right, the trial leaves it contradicted, and every pose, point and report is as
    before the trial."""
    rec, truth, opts = two_halves(twist_deg=0.0, look_alike=True)
    assert register_next(rec, [4], opts) is None
    poses, xyz, reports = dict(rec.poses), rec.xyz.copy(), {w: replace(r) for w, r in rec.reports.items()}
    params = [p.detach().clone() for p in rec.sdf.parameters()]
    assert close_loop(rec, [4], opts) is None
    assert 4 not in rec.poses and rec.reports == reports and rec.bad_pairs == set()
    assert all(np.array_equal(rec.poses[w][0], poses[w][0]) and np.array_equal(rec.poses[w][1], poses[w][1])
               for w in poses) and sorted(rec.poses) == sorted(poses)
    np.testing.assert_array_equal(rec.xyz, xyz)
    assert all(torch.equal(p, q) for p, q in zip(rec.sdf.parameters(), params))
