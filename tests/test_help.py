"""Every ``--help`` works with no ini and no database, and matches the shapes of the original pyfi documentation."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

ORIGINAL_COMMANDS = ["add", "agent", "api", "db", "delete", "listen", "ls", "node", "proc",
                 "scheduler", "task", "update", "web", "whoami", "worker"]
#: commands pyfi adds beyond the documented ones (each documented in docs/)
ADDED_COMMANDS = ["compose", "login", "logout"]
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"


def command_paths() -> list[tuple[str, ...]]:
    """Every command path of the click tree, the root's lazy groups included."""
    from pyfi.cli import cli

    paths: list[tuple[str, ...]] = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        paths.append(path)
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=path[-1] if path else "pyfi")
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), path + (name,))

    walk(cli, ())
    return paths


def commands_section(help_text: str) -> list[str]:
    lines = help_text.split("Commands:", 1)[1].splitlines()
    return [line.split()[0] for line in lines if line.startswith("  ") and line.strip()]


def option_lines(help_text: str) -> list[str]:
    return [line.strip() for line in help_text.split("Options:", 1)[1].splitlines() if line.strip().startswith("-")]


def has_option(help_text: str, short: str | None, long: str) -> bool:
    pattern = (rf"^{re.escape(short)}, " if short else "^") + rf"{re.escape(long)}\b"
    return any(re.match(pattern, line) for line in option_lines(help_text))


@pytest.fixture
def no_config(home: Path, monkeypatch) -> Path:
    """No ini and a database URI that cannot be reached: help must touch neither."""
    monkeypatch.setenv("PYFI_DB", UNREACHABLE_DB)
    return home


def test_every_command_help_works_without_ini_or_database(no_config, run_cli):
    paths = command_paths()
    assert len(paths) > 60, "the tree walk should reach every add/update/delete/ls subcommand"
    for path in paths:
        result = run_cli(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        usage = result.output.splitlines()[0].split()
        assert usage[0] == "Usage:" and tuple(usage[2:2 + len(path)]) == path, (path, result.output)
    assert not no_config.exists(), "help must not create PYFI_HOME, an ini or a database"


def test_root_help_lists_exactly_the_documented_commands(no_config, run_cli):
    for args in ((), ("--help",)):
        result = run_cli(*args)
        assert result.exit_code == 0
        assert commands_section(result.output) == sorted(ORIGINAL_COMMANDS + ADDED_COMMANDS)
    help_text = run_cli("--help").output
    for short, long in ((None, "--debug"), ("-d", "--db"), (None, "--backend"), (None, "--broker"),
                        ("-i", "--ini"), ("-c", "--config")):
        assert has_option(help_text, short, long), long


def test_db_and_proc_groups_list_the_documented_subcommands(no_config, run_cli):
    assert commands_section(run_cli("db", "--help").output) == ["drop", "init", "json", "migrate", "rebuild"]
    proc_help = run_cli("proc", "--help").output
    assert commands_section(proc_help) == ["pause", "remove", "restart", "resume", "start", "stop"]
    assert has_option(proc_help, None, "--id")
    assert commands_section(run_cli("agent", "--help").output) == ["start"]


def test_add_queue_help_shows_the_type_choice_with_default_direct(no_config, run_cli):
    text = run_cli("add", "queue", "--help").output
    assert "-t, --type [topic|direct|fanout]" in text
    assert "default: direct" in text
    assert has_option(text, "-n", "--name")


def test_add_processor_help_has_the_documented_short_flags(no_config, run_cli):
    text = run_cli("add", "processor", "--help").output
    for short, long in (("-n", "--name"), ("-m", "--module"), ("-h", "--hostname"), ("-w", "--workers"),
                        ("-r", "--retries"), ("-g", "--gitrepo"), ("-c", "--commit"),
                        ("-rs", "--requested_status"), ("-b", "--beat"), ("-br", "--branch")):
        assert has_option(text, short, long), (short, long, text)


def test_add_socket_plug_user_role_privilege_help(no_config, run_cli):
    socket = run_cli("add", "socket", "--help").output
    for short, long in (("-n", "--name"), ("-q", "--queue"), ("-pn", "--procname"), ("-t", "--task"),
                        ("-i", "--interval")):
        assert has_option(socket, short, long), long
    plug = run_cli("add", "plug", "--help").output
    for short, long in (("-n", "--name"), ("-q", "--queue"), ("-s", "--source"), ("-t", "--target"),
                        (None, "--type"), (None, "--position")):
        assert has_option(plug, short, long), long
    assert "--type [result|error]" in plug.lower()
    user = run_cli("add", "user", "--help").output
    for short, long in (("-n", "--name"), ("-e", "--email"), ("-p", "--password")):
        assert has_option(user, short, long), long
    assert has_option(run_cli("add", "role", "--help").output, "-n", "--name")
    privilege = run_cli("add", "privilege", "--help").output
    for short, long in (("-u", "--user"), ("-n", "--name"), ("-r", "--role")):
        assert has_option(privilege, short, long), long


def test_agent_start_keeps_port_on_p_and_moves_the_pool(no_config, run_cli):
    text = run_cli("agent", "start", "--help").output
    assert has_option(text, "-p", "--port")
    assert has_option(text, "-po", "--pool")
    assert not has_option(text, "-p", "--pool")
    for short, long in ((None, "--clean"), ("-b", "--backend"), ("-r", "--broker"), ("-c", "--config"),
                        ("-q", "--queues"), ("-u", "--user"), ("-s", "--size")):
        assert has_option(text, short, long), long


def test_ls_calls_call_and_listen_help(no_config, run_cli):
    calls = run_cli("ls", "calls", "--help").output
    for short, long in (("-p", "--page"), ("-r", "--rows"), ("-a", "--ascend")):
        assert has_option(calls, short, long), long
    call = run_cli("ls", "call", "--help").output
    for short, long in ((None, "--id"), ("-n", "--name"), ("-r", "--result"), ("-t", "--tree"),
                        ("-g", "--graph"), ("-f", "--flow")):
        assert has_option(call, short, long), long
    listen = run_cli("listen", "--help").output
    for short, long in (("-n", "--name"), ("-c", "--channel"), ("-a", "--adaptor")):
        assert has_option(listen, short, long), long


def test_help_imports_neither_celery_nor_sqlalchemy(tmp_path):
    code = ("import sys\nfrom pyfi.cli import main\nsys.argv = ['pyfi', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('celery' in sys.modules, 'sqlalchemy' in sys.modules)\n")
    env = {**os.environ, "PYFI_HOME": str(tmp_path / "home"), "PYFI_DB": UNREACHABLE_DB}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Commands:" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "False False"


def console_script() -> str:
    beside = Path(sys.executable).parent / "pyfi"
    found = str(beside) if beside.exists() else shutil.which("pyfi")
    assert found, "the pyfi console script is not installed (pip install -e .)"
    return found


def test_help_wall_time(tmp_path, capsys):
    script = console_script()
    env = {**os.environ, "PYFI_HOME": str(tmp_path / "home"), "PYFI_DB": UNREACHABLE_DB}
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        out = subprocess.run([script, "--help"], capture_output=True, text=True, env=env, timeout=60)
        timings.append(time.perf_counter() - start)
        assert out.returncode == 0 and "Commands:" in out.stdout, out.stderr
    best = min(timings)
    with capsys.disabled():
        print(f"\n`pyfi --help` wall time: best of 5 = {best:.3f} s ({script})")
    assert best < 1.0
