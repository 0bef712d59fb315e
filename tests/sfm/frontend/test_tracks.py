"""Tracks (sfm/frontend/tracks.py): pairwise matches joined into tracks, and a match that would join
two keypoints of one view left out, the stronger pair's match winning."""

from __future__ import annotations

import numpy as np

from sfm.frontend.tracks import Correspondences, build_tracks


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
