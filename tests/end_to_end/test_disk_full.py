"""A full disk: one line naming the file system and the space needed, no temporary file left, the
last good checkpoint untouched, and the rerun resumes once there is room. On a small tmpfs where the
machine allows mounting one (root), else on a stub file system (free space and failing writes
simulated at the two places the code asks: free_bytes and the checkpoint's torch.save;
FIELDS_TEST_STUB_DISK=1 picks the stub)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from synthetic import DEMO

import fields.io_utils as io_utils
import fields.neus.checkpoint as checkpoint
from apps.cli import main
from fields.errors import FieldsError
from fields.io_utils import atomic_write

TRAIN = ["--no-viewer", "--set", "train.max_image_size=32", "--set", "train.rays_per_batch=64",
         "--set", "train.hash_log2_size=12", "--set", "train.checkpoint_every=2", "--set", "train.occupancy_every=0"]


class Disk:
    """A folder on a small file system that the test can fill and empty again."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.mp, self.real = root, monkeypatch, False
        root.mkdir()
        if os.environ.get("FIELDS_TEST_STUB_DISK") != "1" and shutil.which("mount"):
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(root)], capture_output=True)
            self.real = mounted.returncode == 0

    def fill(self) -> None:
        """Leave about 1 MB free."""
        if self.real:
            with open(self.root / "filler", "wb") as f:
                while io_utils.free_bytes(self.root) > 1 << 20:
                    f.write(b"\0" * (256 << 10))
            return
        self.mp.setattr(io_utils, "free_bytes", lambda path: 1 << 20)
        real_save = torch.save

        def failing_save(obj, f):  # writes a part, then fails as torch's writer does on a full disk
            real_save({"part": torch.zeros(1000)}, f)
            raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing "
                               "file data/0: file write failed")
        self.mp.setattr(checkpoint.torch, "save", failing_save)

    def empty(self) -> None:
        if self.real:
            (self.root / "filler").unlink()
        else:
            self.mp.undo()

    def close(self) -> None:
        if self.real:
            subprocess.run(["umount", "-l", str(self.root)], check=False)  # lazily: a log file may be open


@pytest.fixture
def disk(tmp_path, monkeypatch):
    d = Disk(tmp_path / "disk", monkeypatch)
    yield d
    d.close()


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_training_on_a_full_disk_stops_with_one_line_and_resumes_once_there_is_room(disk, capsys, monkeypatch):
    run = disk.root / "run"
    ckpt = run / "checkpoints" / "field.pt"
    assert main(["train", str(DEMO / "transforms.json"), "-o", str(run), "--set", "train.steps=2", *TRAIN]) == 0
    good = ckpt.read_bytes()
    disk.fill()
    assert main(["train", str(DEMO / "transforms.json"), "-o", str(run), "--set", "train.steps=4", *TRAIN]) == 2
    line = error_line(capsys)
    assert "no space left on" in line and "field.pt" in line and "need about" in line
    assert ckpt.read_bytes() == good and not list(ckpt.parent.glob("*.tmp*"))
    # the write itself failing (no check before it): the same line, nothing left behind
    monkeypatch.setattr(io_utils, "ensure_space", lambda path, need: None)
    assert main(["train", str(DEMO / "transforms.json"), "-o", str(run), "--set", "train.steps=4", *TRAIN]) == 2
    assert "no space left on" in error_line(capsys)
    assert ckpt.read_bytes() == good and not list(ckpt.parent.glob("*.tmp*"))
    disk.empty()
    monkeypatch.undo()
    assert main(["train", str(DEMO / "transforms.json"), "-o", str(run), "--set", "train.steps=4", *TRAIN]) == 0
    assert "resuming training at step 2" in capsys.readouterr().out + (run / "log.txt").read_text()
    assert int(torch.load(ckpt, weights_only=True)["step"]) == 4


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def full(tmp: Path) -> None:
        tmp.write_text("par")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(FieldsError, match="no space left on .* to write .*a.txt"):
        atomic_write(target, full)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]

    def denied(tmp: Path) -> None:
        raise OSError(errno.EACCES, "Permission denied", str(tmp))

    with pytest.raises(FieldsError, match="cannot write .*a.txt: Permission denied"):
        atomic_write(target, denied)


def test_a_write_larger_than_the_free_space_is_refused_before_it_starts(tmp_path):
    called = []
    with pytest.raises(FieldsError, match="need about"):
        atomic_write(tmp_path / "big.bin", called.append, need_bytes=io_utils.free_bytes(tmp_path) + (1 << 30))
    assert not called and not list(tmp_path.iterdir())
