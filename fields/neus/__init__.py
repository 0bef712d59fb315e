"""NeuS surface reconstruction: SDF and radiance fields, the occupancy grid, volume rendering of rays and
whole views, regularisers, and the training loop with its checkpoints."""

# how render_image renders a view (here, not in render_view.py, so the settings can name them without torch)
RENDERERS = ("traced", "volume")
