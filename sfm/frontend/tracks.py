"""The front end: SIFT, matching and geometric verification through pycolmap, read back as arrays,
and the verified matches joined into multi-view tracks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fields.scene import Scene
from sfm.frontend.extract import Features, FrontEndOptions, extract_and_match


@dataclass
class Correspondences:
    """Keypoints per view (scene order) and verified inlier matches per view pair (i < j)."""

    keypoints: list[np.ndarray]  # (K_i, 2) pixels, COLMAP convention (pixel centres at +0.5)
    pairs: dict[tuple[int, int], np.ndarray]  # (M, 2) keypoint indices into views i and j

    def num_matches(self, i: int, j: int) -> int:
        key = (min(i, j), max(i, j))
        return len(self.pairs[key]) if key in self.pairs else 0


def match_views(scene: Scene, image_dir: Path, work: Path, opts: FrontEndOptions) -> tuple[Correspondences, Features]:
    """Run pycolmap's extraction and matching into work/database.db and read the result back; also
    where the features came from and how they were matched."""
    pycolmap.logging.minloglevel = 2
    work.mkdir(parents=True, exist_ok=True)
    database = work / "database.db"
    features = extract_and_match(scene, image_dir, database, opts)
    return read_database(database, scene), features


def read_database(database: Path, scene: Scene) -> Correspondences:
    """Keypoints and verified two-view inlier matches from a COLMAP database, indexed like scene.views."""
    by_file = {v.path.name: i for i, v in enumerate(scene.views) if v.path is not None}
    db = pycolmap.Database.open(str(database))
    try:
        view_of: dict[int, int] = {}
        keypoints = [np.zeros((0, 2)) for _ in scene.views]
        for im in db.read_all_images():
            if im.name in by_file:
                view_of[im.image_id] = by_file[im.name]
                keypoints[by_file[im.name]] = np.asarray(db.read_keypoints(im.image_id))[:, :2].astype(np.float64)
        pairs: dict[tuple[int, int], np.ndarray] = {}
        pair_ids, geometries = db.read_two_view_geometries()
        for pid, geo in zip(pair_ids, geometries):
            id1, id2 = pycolmap.pair_id_to_image_pair(pid)
            m = np.asarray(geo.inlier_matches, np.int64).reshape(-1, 2)
            if id1 not in view_of or id2 not in view_of or len(m) == 0:
                continue
            i, j = view_of[id1], view_of[id2]
            pairs[(i, j) if i < j else (j, i)] = m if i < j else m[:, ::-1].copy()
    finally:
        db.close()
    return Correspondences(keypoints, pairs)


def build_tracks(corr: Correspondences, min_length: int = 2) -> list[np.ndarray]:
    """Matches joined transitively into tracks, each (L, 2) rows of (view, keypoint). A component that
    would hold two keypoints of one view (wrong matches chaining tracks together) is split by
    split_conflicts (dropping such components whole can lose most observations: one wrong match can
    chain a large share of all keypoints into a single component)."""
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in corr.keypoints])])
    if not corr.pairs:
        return []
    strongest = sorted(corr.pairs, key=lambda ij: -len(corr.pairs[ij]))
    edges = np.concatenate([np.stack([offsets[i] + corr.pairs[(i, j)][:, 0], offsets[j] + corr.pairs[(i, j)][:, 1]], 1)
                            for i, j in strongest])
    n = int(offsets[-1])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    node_view = np.searchsorted(offsets, np.arange(n), side="right") - 1
    used = np.unique(edges)
    _, first = np.unique(label[used] * len(corr.keypoints) + node_view[used], return_index=True)
    conflicted = np.zeros(label.max() + 1, bool)
    conflicted[np.delete(label[used], first)] = True  # a component with a second keypoint of some view
    clean = used[~conflicted[label[used]]]
    clean = clean[np.argsort(label[clean], kind="stable")]
    groups = np.split(clean, np.flatnonzero(np.diff(label[clean])) + 1) if len(clean) else []
    groups += split_conflicts(edges[conflicted[label[edges[:, 0]]]], node_view)
    return [np.stack([node_view[g], g - offsets[node_view[g]]], 1) for g in groups if len(g) >= min_length]


def split_conflicts(edges: np.ndarray, node_view: np.ndarray) -> list[np.ndarray]:
    """Tracks (sorted node arrays) from matches (node, node), joined one by one in the order given (the
    strongest pairs' first): a match that would put two keypoints of one view into a track is left out,
    as COLMAP's tracks never hold two."""
    parent: dict[int, int] = {}
    nodes: dict[int, list[int]] = {}
    views: dict[int, set[int]] = {}

    def root(a: int) -> int:
        if a not in parent:
            parent[a], nodes[a], views[a] = a, [a], {int(node_view[a])}
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges.tolist():
        ra, rb = root(a), root(b)
        if ra == rb or not views[ra].isdisjoint(views[rb]):
            continue
        if len(nodes[ra]) < len(nodes[rb]):
            ra, rb = rb, ra
        parent[rb] = ra
        nodes[ra] += nodes.pop(rb)
        views[ra] |= views.pop(rb)
    return [np.array(sorted(group)) for group in nodes.values()]
