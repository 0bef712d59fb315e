"""Files written whole or not at all: through a temporary file beside the target, renamed into place.

A reader, or a run killed half-way and started again, sees the old file or the new one, never part of
one. The temporary name keeps the target's extension, because writers such as trimesh, imageio and
numpy choose the format from it. A write that fails (a full disk, an I/O error) leaves the old file as
it was, removes the temporary one, and says so in one line; a write told its size checks the free
space first.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from fields.errors import FieldsError

# besides a write's own size: what the file system needs for itself, and what other writers may take meanwhile
SPACE_MARGIN_BYTES = 16 << 20
# errors that mean the storage is full (a quota counts as full)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def mount_point(path: Path | str) -> Path:
    """The mount point of the file system path lives on (of its nearest existing folder)."""
    p = Path(path).resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: Path | str) -> int:
    """Free bytes, for this user, on the file system path lives on."""
    return shutil.disk_usage(mount_point(path)).free


def _mb(n: float) -> str:
    return f"{max(n, 0) / 1e6:,.0f} MB"


def no_space(path: Path | str, need_bytes: int | None) -> FieldsError:
    """The one line for a write that does not fit."""
    need = f"need about {_mb(need_bytes)}, " if need_bytes else ""
    return FieldsError(f"no space left on {mount_point(path)} to write {path} ({need}{_mb(free_bytes(path))} free)")


def ensure_space(path: Path | str, need_bytes: int) -> None:
    """Raise no_space when path's file system lacks need_bytes (plus a margin)."""
    if free_bytes(path) < need_bytes + SPACE_MARGIN_BYTES:
        raise no_space(path, need_bytes)


def atomic_write(path: Path | str, write: Callable[[Path], Any], need_bytes: int = 0) -> None:
    """Call write(tmp) on a temporary path beside `path`, then move it into place. need_bytes: about how
    large the file will be, checked against the free space first (0: no check)."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    if need_bytes:
        ensure_space(path, need_bytes)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise no_space(path, need_bytes) from None
        raise FieldsError(f"cannot write {path}: {exc.strerror or exc}") from None
    except RuntimeError as exc:
        # writers in C++ (torch.save's zip writer) report a failed write as a RuntimeError without its
        # errno ("file write failed", or "unexpected pos" when the file came out shorter): the free space
        # tells a full disk
        if free_bytes(path) < max(need_bytes, 1) + SPACE_MARGIN_BYTES:
            raise no_space(path, need_bytes) from None
        if not any(word in str(exc) for word in ("inline_container", "write")):
            raise
        raise FieldsError(f"cannot write {path}: {str(exc).strip().splitlines()[-1]}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path | str, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path | str, doc: Any, indent: int = 1) -> None:
    write_text(path, json.dumps(doc, indent=indent))
