"""One writer per run folder: a second command is refused at once naming the holder, or waits; a lock
left by a killed process is taken over; a command that fails leaves no empty run folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from synthetic import DEMO

from apps.cli import main
from apps.run_lock import LOCK_NAME, run_lock
from fields.errors import FieldsError


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    with run_lock(run):
        assert f"pid {os.getpid()}" in (run / LOCK_NAME).read_text()
        with pytest.raises(FieldsError, match=f"in use by pid {os.getpid()} .*add --wait"):
            with run_lock(run):
                pass
    with run_lock(run):  # released when the holder's block ends
        pass


def test_a_waiting_writer_goes_on_when_the_holder_is_done(tmp_path):
    run, said = tmp_path / "run", []
    entered = threading.Event()

    def hold():
        with run_lock(run):
            entered.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(5)
    t0 = time.time()
    with run_lock(run, wait=True, poll_s=0.02, log=said.append):
        waited = time.time() - t0
    holder.join()
    assert waited > 0.2 and len(said) == 1 and "waiting for" in said[0]


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    run = tmp_path / "run"
    code = ("import sys, time; from apps.run_lock import run_lock\n"
            f"with run_lock({str(run)!r}):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(FieldsError, match=f"pid {proc.pid}"):
            with run_lock(run):
                pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with run_lock(run):  # the kernel released the dead holder's lock; its file names it still
        pass


def test_a_failed_command_leaves_no_run_folder_it_made(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ValueError), run_lock(run):
        raise ValueError("boom")
    assert not run.exists()
    run.mkdir()
    with pytest.raises(ValueError), run_lock(run):
        raise ValueError("boom")
    assert run.is_dir()  # a folder it did not make stays


def test_a_second_command_on_a_busy_run_folder_exits_with_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    with run_lock(run):
        code = main(["train", str(DEMO / "transforms.json"), "-o", str(run), "--no-viewer"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"in use by pid {os.getpid()}" in err[0]
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]
