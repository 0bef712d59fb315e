"""NeuS surface reconstruction: SDF and radiance fields, the occupancy grid, volume rendering of rays and
whole views, regularisers, and the training loop with its checkpoints."""
