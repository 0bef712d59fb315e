"""Where a run's photos are, recorded so that the run folder survives a move or a copy.

A run folder does not hold its photos. scene.json records the folder they share (their root) twice,
relative to the run folder (right when photos and run move together) and absolute (right when only the
run is copied, on the same machine), each photo's path under that root, and its content digest with
its size and modification time. On loading, the first candidate root under which the photos are found
unchanged wins; `--images DIR` puts the user's folder before both. A photo counts as unchanged when
its size and modification time match the recorded ones, or else when its digest does (a copy that did
not keep the times costs one read of each photo).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

# digest of a file's bytes: BLAKE2b, 128 bits (about 1 GB/s on one core)
DIGEST_BYTES = 16


def file_digest(path: Path) -> str:
    """The hex digest of a file's contents."""
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Fingerprint:
    """What identifies a photo's contents: its digest, with the size and time that make re-reading it
    unnecessary while they still match."""

    digest: str
    size: int
    mtime_ns: int

    @staticmethod
    def of(path: Path) -> "Fingerprint":
        st = os.stat(path)
        return Fingerprint(file_digest(path), st.st_size, st.st_mtime_ns)

    def matches(self, path: Path) -> bool:
        """Whether the file at path has these contents (its digest is read only when size or time differ)."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_size != self.size:
            return False
        return st.st_mtime_ns == self.mtime_ns or file_digest(path) == self.digest

    def to_dict(self) -> dict:
        return {"digest": self.digest, "size": self.size, "mtime_ns": self.mtime_ns}

    @staticmethod
    def from_dict(d: dict) -> "Fingerprint":
        return Fingerprint(str(d["digest"]), int(d["size"]), int(d["mtime_ns"]))


def common_root(paths: list[Path]) -> Path | None:
    """The deepest folder holding every path (None for no paths)."""
    parents = [str(Path(p).resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents)) if parents else None


def root_record(root: Path, run: Path) -> dict:
    """scene.json's record of the photos' root: relative to the run folder and absolute."""
    root, run = Path(root).resolve(), Path(run).resolve()
    return {"relative": os.path.relpath(root, run), "absolute": str(root)}


@dataclass
class Located:
    """Where the photos were found: the root used, and the recorded photos missing or changed under it."""

    root: Path
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    tried: list[Path] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.changed

    def problem(self) -> str | None:
        """One line saying what is wrong (None when every photo is there, unchanged)."""
        if self.complete:
            return None
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} photos not found ({_names(self.missing)})")
        if self.changed:
            parts.append(f"{len(self.changed)} photos changed since their poses were found ({_names(self.changed)})")
        where = ", ".join(str(p) for p in self.tried)
        return "; ".join(parts) + f"; looked in {where}"


def _names(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def locate(run: Path, record: dict, entries: list[tuple[str, Fingerprint | None]],
           override: Path | None = None) -> Located:
    """The root to read the photos from, tried in this order: `override` when given, the recorded root
    relative to the run folder, the recorded absolute one. The first under which every photo is found
    unchanged wins, otherwise the one under which the fewest are missing or changed. entries: (path
    under the root, fingerprint or None when none was recorded)."""
    candidates = ([Path(override).resolve()] if override is not None else []) + [
        (Path(run) / record["relative"]).resolve(), Path(record["absolute"])]
    candidates = list(dict.fromkeys(candidates))
    best: Located | None = None
    for root in candidates:
        found = Located(root, tried=candidates)
        for rel, fp in entries:
            path = root / rel
            if not path.is_file():
                found.missing.append(rel)
            elif fp is not None and not fp.matches(path):
                found.changed.append(rel)
        if found.complete:
            return found
        if best is None or len(found.missing) + len(found.changed) < len(best.missing) + len(best.changed):
            best = found
    assert best is not None
    return best
