"""Files written whole or not at all: through a temporary file beside the target, renamed into place.

A reader, or a run killed half-way and started again, sees the old file or the new one, never part of
one. The temporary name keeps the target's extension, because writers such as trimesh, imageio and
numpy choose the format from it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: Path | str, write: Callable[[Path], Any]) -> None:
    """Call write(tmp) on a temporary path beside `path`, then move it into place."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path | str, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path | str, doc: Any, indent: int = 1) -> None:
    write_text(path, json.dumps(doc, indent=indent))
