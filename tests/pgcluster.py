"""A PostgreSQL cluster of the tests' own, where every login needs its password (scram-sha-256).

The machine's shared server trusts every local login, so a password proves
nothing there: attacks on rights are tried here instead. The cluster is
made with ``initdb`` in a temporary directory (as the ``postgres`` OS user
when the tests run as root: PostgreSQL refuses to run as root), listens on
127.0.0.1 on a free port, and is stopped and removed at the end.

Roles: ``pgsuper`` (the cluster's superuser, for setting up and
cleaning) and, per database, an owner that is *not* a superuser but may
create roles and databases, as a pyfi administrator's login would be.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

SUPER = "pgsuper"


def pg_bindir() -> Path | None:
    """The directory of initdb and pg_ctl (Debian keeps them out of PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    root: Path
    port: int
    password: str
    bindir: Path
    as_user: list[str]

    def url(self, user: str, password: str, database: str = "postgres") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    @property
    def super_url(self) -> str:
        return self.url(SUPER, self.password)

    def execute(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as the superuser, each in its own transaction (CREATE DATABASE needs that)."""
        import psycopg2

        conn = psycopg2.connect(self.url(SUPER, self.password, database))
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            conn.close()

    def new_database(self) -> tuple[str, str, str]:
        """A database owned by a new non-superuser owner (CREATEROLE): (owner's URL, owner, password)."""
        name = f"pyfi_{uuid.uuid4().hex[:8]}"
        owner, password = f"owner_{name}", uuid.uuid4().hex
        self.execute(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{password}'",
                     f"CREATE DATABASE {name} OWNER {owner}")
        return self.url(owner, password, name), owner, password

    def stop(self) -> None:
        subprocess.run(self.as_user + [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                                       "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> Cluster:
    """initdb and start a scram-only cluster; RuntimeError naming what is missing when it cannot."""
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("initdb not found (install PostgreSQL's server package)")
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise RuntimeError("running as root without runuser: cannot start PostgreSQL as the postgres user")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="pyfi-pg-"))
    password = uuid.uuid4().hex
    (root / "pw").write_text(password)
    if as_user:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    data, port = root / "data", free_port()
    run = lambda *args: subprocess.run(as_user + list(args), capture_output=True, text=True, timeout=120)  # noqa: E731
    done = run(str(bindir / "initdb"), "-D", str(data), "-U", SUPER, f"--pwfile={root / 'pw'}", "-A", "scram-sha-256",
               "-E", "UTF8", "--no-instructions")
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {done.stderr.strip()[-300:]}")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    done = run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()[-300:]}")
    return Cluster(root, port, password, bindir, as_user)


def login(url: str, user: str, password: str, *, options: str | None = None):
    """A psycopg2 connection (autocommit) to the database of ``url`` as ``user`` with ``password``."""
    import psycopg2
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    conn = psycopg2.connect(host=parsed.host, port=parsed.port, dbname=parsed.database, user=user, password=password,
                            options=options)
    conn.autocommit = True
    return conn


def attempt(conn, statement: str, params: tuple = ()) -> str:  # noqa: ANN001 - a psycopg2 connection
    """Run one statement: 'refused: <first line of the error>' or 'ok: N rows'."""
    import psycopg2

    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            return f"ok: {cursor.rowcount} rows"
    except psycopg2.Error as exc:
        return f"refused: {(exc.pgerror or str(exc)).strip().splitlines()[0]}"


@contextlib.contextmanager
def cluster_of_our_own():  # noqa: ANN201 - an Iterator[Cluster]
    """A started cluster (a skip saying why when there cannot be one), stopped on exit."""
    from conftest import require_service
    from pyfi.db.engine import dispose_all

    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        require_service("a PostgreSQL cluster of the tests' own (initdb)", str(exc))
    try:
        yield cluster
    finally:
        dispose_all()
        cluster.stop()
