"""What a person runs: the `fields` command (`cli`), the pipeline that chains SfM, training, export and
evaluation (`pipeline`), the settings (`config`), the live viewer (`viewer`) and the demo scene's
renderer (`demo_scene`). `reconstruct` runs the whole pipeline on a folder of photos."""

from __future__ import annotations

from fields.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "reconstruct": "apps.pipeline", "resolve": "apps.config", "describe": "apps.config", "main": "apps.cli",
    "start_viewer": "apps.viewer",
})
