"""Shared fixtures: where the reference data and the demo scene live."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEMO = ROOT / "assets" / "demo"


def data_path(*parts: str) -> Path:
    """A path in ../shared/data, skipping the test when it is absent."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference data {p} is absent")
    return p
