"""The Level-S2fM-style incremental mapper: the scene is an SDF whose zero level set holds the 3-D points.

`mapper.py` is the loop; each step has its module: `start` (GLOMAP's poses or a two-view pair),
`register` (PnP on points near the level set), `vote` and `withdraw` (epipolar and track votes; views
withdrawn, points dropped, observations unlinked), `triangulate` (new points traced onto the SDF),
`refine` (local and global bundle adjustment: `bundle_adjustment` the neural one, `classical_polish`
pycolmap's), `loop` (closing a ring on trial), `report` (the Scene and per-view reports).
`options.NeuralSfMOptions` holds every setting; `state.Reconstruction` the model as it grows.
"""
