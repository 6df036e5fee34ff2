"""The tests run on two workers (pytest-xdist, ``-n 2`` in pyproject.toml), in groups a worker runs one after another.

- ``postgres``: every test on the shared PostgreSQL server. Its roles (pyfi
  users' logins, workers' logins) are the server's, not a test database's,
  so two such tests at once would meet.
- ``browser``: the browser tests (one browser at a time, on a machine of
  two cores).
- any other test stays with its module's, and its module's fixtures.

The fault-injection tests (tests/test_faults_*.py) time what a network
does after a kill or an outage: each runs alone, while the other worker
waits between two of its tests (:func:`turn`).

The controller schedules by test id alone, so a test on PostgreSQL is
known by its id: ``[postgres]`` in its parameters, or its module or name
below. Each worker checks that every test taking a PostgreSQL fixture is
known so: a new one that is not fails the run at collection, saying where
to add it.
"""
from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import Iterator

import pytest

ON_POSTGRES = re.compile(r"[\[-]postgres[\]-]")
#: modules every test of which uses the PostgreSQL server, whatever its id says
POSTGRES_MODULES = {"tests/test_attacks_sql.py", "tests/test_build_apart.py", "tests/test_run_as.py",
                    "tests/test_run_dirs.py", "tests/test_worker_logins.py"}
#: other tests on the server whose id does not say so
POSTGRES_TESTS = {"tests/test_errors.py::test_missing_database_on_a_live_server_names_it",
                  "tests/test_recorder.py::test_postgres_outage_while_connections_are_refused"}
POSTGRES_FIXTURES = {"pg_server_url", "pg_migrated", "scram_cluster", "scram_db", "role_prefix"}
BROWSER_MODULES = {"tests/test_web.py", "tests/test_web_firefox.py"}
ALONE = re.compile(r"^tests/test_faults_\w+\.py::")


def group_of(nodeid: str) -> str:
    """The group of the test with this id."""
    module, _, _ = nodeid.partition("::")
    if ON_POSTGRES.search(nodeid) or module in POSTGRES_MODULES or nodeid.split("[")[0] in POSTGRES_TESTS:
        return "postgres"
    return "browser" if module in BROWSER_MODULES else module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unknown = [item.nodeid for item in items
               if POSTGRES_FIXTURES & set(item.fixturenames) and group_of(item.nodeid) != "postgres"]
    if unknown:
        raise pytest.UsageError(f"{unknown[0]} uses the PostgreSQL server but its id does not say so: add it to "
                                "POSTGRES_TESTS (or its module to POSTGRES_MODULES) in tests/xdist_groups.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """pytest-xdist's scheduling by scope, the scope of a test being its group."""

        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)


@pytest.fixture(autouse=True)
def turn(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A test's turn: alone for a fault-injection test, beside the other worker's test for any other.

    A lock shared by the workers (flock on a file beside their temporary directories), taken with the
    writer first: a test that must run alone takes the gate, so no other test starts meanwhile, then waits
    for the one running to end.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    root = Path(tmp_path_factory.getbasetemp()).parent
    with open(root / "turn.gate", "a") as gate, open(root / "turn.lock", "a") as lock:
        alone = bool(ALONE.match(request.node.nodeid))
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
