"""Multi-view geometry on numpy arrays: two-view initialisation, PnP, triangulation, epipolar checks."""
