"""The neural SfM's options: one dataclass, each field with what it is for (as COLMAP's
IncrementalMapper::Options). Distances are in the SDF's frame, whose cube has half-width 1; pixel
thresholds in image pixels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NeuralSfMOptions:
    # |sdf| below which a point counts as on the zero level set (the SDF's cube has half-width 1)
    tau: float = 0.02
    # reprojection error above which an observation or a point is rejected
    max_error_px: float = 4.0
    # PnP-RANSAC's inlier threshold when registering a view
    pnp_error_px: float = 3.0
    # PnP accepts a pose with at least this many inliers (as COLMAP's mapper) ...
    min_inliers: int = 30
    # ... and at least this share of its correspondences as inliers (as COLMAP's mapper)
    min_inlier_ratio: float = 0.25
    # a registered view sharing at least this many good matches with a view votes on its pose
    epipolar_min_matches: int = 15
    # a pair agrees with two poses when this share of its matches fits their epipolar geometry
    epipolar_agree: float = 0.5
    # a view whose pose was withdrawn more often than this is not tried again
    max_withdrawals: int = 2
    # steps fitting the fresh SDF to the start's points
    init_fit_steps: int = 100
    # neural BA steps after each registration, over the new view and its neighbours (local_views)
    local_steps: int = 20
    # neural BA steps of each global bundle adjustment, over every registered view
    global_steps: int = 50
    # a global bundle adjustment after every this many registered views
    global_every: int = 5
    # views in the local BA: the new one and its most connected registered neighbours
    local_views: int = 6
    # final global rounds stop below this mean error, in pixels of the images SIFT saw (detection_scale)
    target_error_px: float = 1.0
    # at most this many final global rounds
    final_rounds: int = 3
    # focal lengths refined in the global bundle adjustments (once refine_focal_from views are registered)
    refine_focal: bool = True
    # registered views before the focal lengths are refined: with fewer, focal length and depth trade off
    refine_focal_from: int = 8
    # a pycolmap (Ceres) BA after each global neural BA and as the last step, the SDF refitted after it
    classical_polish: bool = True
    # steps refitting the SDF to the points the classical polish moved
    refit_steps: int = 30
    # "global": GLOMAP's poses for the views it places, the rest registered one by one; "pair": grow from
    # the best two-view pair (the fallback too when GLOMAP places fewer than 3 views)
    start: str = "global"
    # seed of every random choice: the SDF's initialisation, RANSAC, the BA's samples, the mappers
    seed: int = 0
