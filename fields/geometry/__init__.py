"""Geometry shared by training and SfM: camera rays and projection, sphere tracing, the level-set snap,
the normalisation into the unit sphere, a function evaluated on a grid."""
