"""One writer per run folder: an OS file lock held for the whole command.

The lock is `fcntl.flock` on RUN/.lock, which the kernel releases when its holder exits in any way
(kill -9 included): a lock left by a dead process is simply taken. The file itself stays and holds the
holder's PID, host and command, which a refused command names. Local file systems and NFS (where
Linux maps flock onto byte-range locks) both honour it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from fields.errors import FieldsError

LOCK_NAME = ".lock"


def holder(lock_file: Path) -> str:
    """Who holds a lock, as its file says ('another fields command' when it says nothing readable)."""
    try:
        text = lock_file.read_text().strip()
    except OSError:
        text = ""
    return text or "another fields command"


@contextlib.contextmanager
def run_lock(run: Path, wait: bool = False, poll_s: float = 1.0, log=print) -> Iterator[Path]:
    """Hold RUN's lock while the block runs; the folder is made when missing, and removed again when the
    block fails and the folder holds nothing but the lock. Another holder: FieldsError naming it, or,
    with wait, block until it is released (a line said once)."""
    run = Path(run)
    created = not run.exists()
    try:
        run.mkdir(parents=True, exist_ok=True)
        fd = os.open(run / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise FieldsError(f"cannot use run folder {run}: {exc.strerror}") from None
    try:
        _acquire(fd, run, wait, poll_s, log)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                     f"{' '.join(Path(sys.argv[0]).name.split() + sys.argv[1:])}\n".encode())
        try:
            yield run
        except BaseException:
            if created and _only_lock(run):
                _remove_folder(run)
            raise
    finally:
        os.close(fd)


def _acquire(fd: int, run: Path, wait: bool, poll_s: float, log) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    who = holder(run / LOCK_NAME)
    if not wait:
        raise FieldsError(f"{run} is in use by {who}; wait for it to finish, or add --wait")
    log(f"waiting for {run}, in use by {who}")
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(poll_s)


def _only_lock(run: Path) -> bool:
    return all(p.name == LOCK_NAME for p in run.iterdir())


def _remove_folder(run: Path) -> None:
    with contextlib.suppress(OSError):
        (run / LOCK_NAME).unlink()
        run.rmdir()
