"""A worker learns its agent's pause, run and resize at once: the agent wakes it through a FIFO in its run directory.

Without a wake-up, the worker looks at its control file once a second; the
agent writes the file (and wakes the worker) only when what it asks changes.
The agent may be root and the run directory another user's: it writes to
nothing but a FIFO there, and never through a link.
"""
from __future__ import annotations

import os
import select
from pathlib import Path

from pyfi.agent.supervisor import Handle
from pyfi.worker import rundir
from pyfi.worker.control import open_wake, read_control, wake_path, write_command


def readable(fd: int, timeout: float = 5.0) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_a_written_command_wakes_the_worker_at_once(tmp_path):
    control = tmp_path / "control"
    read_end, write_end = open_wake(control)
    try:
        assert not readable(read_end, 0.0)
        write_command(control, "pause", 3)
        assert readable(read_end)  # (a worker waits on it for up to a second)
        assert read_control(control) == ("pause", 3)
        os.read(read_end, 4096)
        assert not readable(read_end, 0.0)  # its own write end held open: no end-of-file once the agent's closes
    finally:
        os.close(read_end)
        os.close(write_end)


def test_without_a_worker_writing_a_command_wakes_nothing_and_fails_not(tmp_path):
    control = tmp_path / "control"
    write_command(control, "run")  # no FIFO at all
    os.mkfifo(wake_path(control))
    write_command(control, "pause")  # a FIFO nobody reads
    assert read_control(control) == ("pause", None)


def test_the_agent_pokes_no_file_and_no_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("root's file\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        link = tmp_path / "to-the-file.wake"
        link.symlink_to(target)
        rundir.poke(link)
        fifo_link = tmp_path / "to-the-fifo.wake"
        fifo_link.symlink_to(fifo)
        rundir.poke(fifo_link)
        plain = tmp_path / "plain.wake"
        plain.write_text("")
        rundir.poke(plain)
        assert target.read_text() == "root's file\n"
        assert plain.read_text() == ""
        assert not readable(reader, 0.0)  # not through a link to a FIFO either
        rundir.poke(fifo)
        assert os.read(reader, 10) == b"!"
    finally:
        os.close(reader)


def test_a_worker_takes_no_fifo_it_did_not_make(tmp_path):
    control = tmp_path / "control"
    wake_path(control).write_text("")  # a plain file where the FIFO goes
    assert open_wake(control) is None
    other = tmp_path / "other"
    os.mkfifo(other)
    wake_path(control).unlink()
    wake_path(control).symlink_to(other)
    assert open_wake(control) is None


def test_the_agent_writes_the_control_file_only_when_its_wish_changes(tmp_path):
    handle = Handle("p-id", "p", "sha", "sig", os.getpid(), str(tmp_path))
    control = Path(handle.control)
    handle.set_paused(False)
    first = control.stat().st_ino
    handle.set_paused(False)
    assert control.stat().st_ino == first  # not replaced: nothing changed
    handle.set_paused(True)
    assert control.stat().st_ino != first and read_control(control) == ("pause", None)
