"""``python -m pyfi.worker`` (what an agent spawns) is ``pyfi worker start``, without importing the CLI or the agent."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: run the worker's entry as ``python -m pyfi.worker`` would, then name the modules of the layers above it it loaded
PROBE = """
import atexit, runpy, sys
def above():
    print("above:", *sorted(m for m in sys.modules if m.startswith(("pyfi.cli", "pyfi.agent"))))
    print("ran:", "pyfi.worker.main" in sys.modules)
atexit.register(above)
sys.argv = ["pyfi.worker", *sys.argv[1:]]
runpy.run_module("pyfi.worker", run_name="__main__", alter_sys=True)
"""


def test_the_worker_entry_takes_the_options_of_pyfi_worker_start():
    from pyfi.cli.runtime import worker_start
    from pyfi.worker.command import start

    assert [p.to_info_dict() for p in start.params] == [p.to_info_dict() for p in worker_start.params]
    assert start.help == worker_start.help


def test_the_worker_entry_imports_neither_cli_nor_agent_and_errors_are_one_line(home: Path, run_cli):
    assert run_cli("db", "init").exit_code == 0
    done = subprocess.run([sys.executable, "-c", PROBE, "-n", "nope"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ), stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "Error: no processor named 'nope' (list them with `pyfi ls processors`)\n"
    assert done.stdout.splitlines() == ["above:", "ran: True"]  # it got as far as the worker's own code


def test_a_bad_node_name_is_refused_before_anything_runs(home: Path):
    done = subprocess.run([sys.executable, "-m", "pyfi.worker", "-n", "p", "--node", "../x"], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "Invalid value for '--node': '../x' is not a node name" in done.stderr
    assert not home.exists()
