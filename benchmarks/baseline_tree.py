"""A baseline commit beside this tree for side-by-side benchmarks: checked out in a temporary git
worktree, and Python run with one tree or the other first on the path (2 threads, its own process)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """The commit's tree in a temporary worktree, removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
                       check=True, capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


def run_python(tree: Path, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`python ARGS` with `tree` first on the path (its packages, not the installed ones), from it."""
    env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2", "HOME": str(Path.home())}
    return subprocess.run([sys.executable, *args], cwd=tree, env=env, check=True, **kwargs)
