"""Fitting a field to a signal on its own: an image, a mesh's SDF, and FreSh's choice of frequency."""
