"""Running the CLI in tests: its output, its one-line errors, its listings."""
from __future__ import annotations

import json

GIT = "https://github.com/acme/flows.git"
PLURALS = ["queues", "processors", "sockets", "plugs", "nodes", "agents", "workers", "schedulers",
           "deployments", "networks", "users", "roles", "tasks", "calls"]


def ok(run_cli, *args: str, input: str | None = None) -> str:
    result = run_cli(*args, input=input)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def error(run_cli, exit_code: int, *args: str) -> str:
    """Run a failing command; return its one ``Error:`` line (no traceback)."""
    result = run_cli(*args)
    assert result.exit_code == exit_code, (args, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.output
    if exit_code == 1 or not lines[0].startswith("Usage:"):  # click's own usage errors add a Usage header
        assert len(lines) == 1, result.stderr
    return lines[-1]


def rows(run_cli, plural: str) -> list[dict]:
    return json.loads(ok(run_cli, "ls", plural, "--json", "-r", "1000"))["rows"]


def names(run_cli, plural: str) -> set[str]:
    return {row["name"] for row in rows(run_cli, plural)}
