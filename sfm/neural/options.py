"""The neural SfM's options: one dataclass, each field with what it is for (as COLMAP's
IncrementalMapper::Options). Distances are in the SDF's frame, whose cube has half-width 1; pixel
thresholds in image pixels."""

from __future__ import annotations

from dataclasses import dataclass

from fields.settings import MAX_SEED, setting

# how the model starts (the `start` setting)
SFM_STARTS = ("global", "pair")


@dataclass
class NeuralSfMOptions:
    # |sdf| below which a point counts as on the zero level set (the SDF's cube has half-width 1)
    tau: float = setting(0.02, gt=0)
    # reprojection error above which an observation or a point is rejected
    max_error_px: float = setting(4.0, gt=0)
    # PnP-RANSAC's inlier threshold when registering a view
    pnp_error_px: float = setting(3.0, gt=0)
    # PnP accepts a pose with at least this many inliers (as COLMAP's mapper) ...
    min_inliers: int = setting(30, ge=4)
    # ... and at least this share of its correspondences as inliers (as COLMAP's mapper)
    min_inlier_ratio: float = setting(0.25, ge=0, le=1)
    # a registered view sharing at least this many good matches with a view votes on its pose
    epipolar_min_matches: int = setting(15, ge=1)
    # a pair agrees with two poses when this share of its matches fits their epipolar geometry
    epipolar_agree: float = setting(0.5, ge=0, le=1)
    # a view whose pose was withdrawn more often than this is not tried again
    max_withdrawals: int = setting(2, ge=0)
    # steps fitting the fresh SDF to the start's points
    init_fit_steps: int = setting(100, ge=0)
    # neural BA steps after each registration, over the new view and its neighbours (local_views)
    local_steps: int = setting(20, ge=0)
    # neural BA steps of each global bundle adjustment, over every registered view
    global_steps: int = setting(50, ge=0)
    # a global bundle adjustment after every this many registered views
    global_every: int = setting(5, ge=1)
    # views in the local BA: the new one and its most connected registered neighbours
    local_views: int = setting(6, ge=1)
    # final global rounds stop below this mean error, in pixels of the images SIFT saw (detection_scale)
    target_error_px: float = setting(1.0, ge=0)
    # at most this many final global rounds
    final_rounds: int = setting(3, ge=0)
    # focal lengths refined in the global bundle adjustments (once refine_focal_from views are registered)
    refine_focal: bool = True
    # registered views before the focal lengths are refined: with fewer, focal length and depth trade off
    refine_focal_from: int = setting(8, ge=0)
    # a pycolmap (Ceres) BA after each global neural BA and as the last step, the SDF refitted after it
    classical_polish: bool = True
    # steps refitting the SDF to the points the classical polish moved
    refit_steps: int = setting(30, ge=0)
    # "global": GLOMAP's poses for the views it places, the rest registered one by one; "pair": grow from
    # the best two-view pair (the fallback too when GLOMAP places fewer than 3 views)
    start: str = setting("global", choices=SFM_STARTS)
    # seed of every random choice: the SDF's initialisation, RANSAC, the BA's samples, the mappers
    seed: int = setting(0, ge=0, le=MAX_SEED)
