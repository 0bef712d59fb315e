"""The test tree mirrors the packages: tests/fields/neus/ tests fields/neus/, tests/sfm/geometry/ tests
sfm/geometry/, tests/apps/ the commands and the viewer, and tests/end_to_end/ whole runs of `fields`
on the demo scene and on bad input. What the tests share (synthetic scenes, the demo scene's and the
reference data's paths) is in synthetic.py.

How the tests are imported: no folder under tests/ has an __init__.py, and no two test files share
a name. pytest's default "prepend" import mode then imports each test file as a top-level module
from its own folder, and puts this folder on sys.path for this conftest, so `import synthetic`
works from every test. A folder without __init__.py is at most a namespace package, and a namespace
package never hides a regular one: `import fields` finds the project's fields/, not tests/fields/.
pytest_configure checks that before any test is collected.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run when a folder of the test tree would be imported in place of a package it mirrors."""
    for name in ("fields", "sfm", "apps"):
        spec = importlib.util.find_spec(name)
        origin = None if spec is None or spec.origin is None else Path(spec.origin).resolve()
        if origin is None or TESTS in origin.parents:
            raise pytest.UsageError(f"`import {name}` finds {origin or 'a namespace package'}, not the project's "
                                    f"package: run pytest from the repository root, with the project installed")
