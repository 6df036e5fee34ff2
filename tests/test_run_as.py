"""Processor code finds no credential worth more than its owner's rights, and ``agent start -u`` is how it runs apart.

The agent runs as root with the database owner's password in its
environment and a private $PYFI_HOME; processor code runs as ``nobody``
(``-u``), on a PostgreSQL cluster where every login needs its password. The
code of a user holding only ADD_PROCESSOR, ADD_SOCKET and RUN_TASK looks
for credentials everywhere it can (its environment, every readable
/proc/*/environ and cmdline, files, its own memory) and tries to grant
itself ALL with every database login it finds.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from network import make_repo, wait_for
from pyfi.core import users
from pyfi.core.access import Actor
from pyfi.db.engine import session_scope

pytestmark = pytest.mark.slow

LEAKY = r'''
import gc, glob, os


def leak(halves):
    """Where this process can read the secret whose two halves it is given (apart, so no command line holds it)."""
    secret = "".join(halves)
    texts = {"environ": repr(dict(os.environ))}
    for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as fh:
                texts[path] = fh.read().decode("utf-8", "replace")
        except OSError:
            pass
    for pattern in ("/root/**", os.environ.get("PYFI_HOME", "/nonexistent") + "/**", "/tmp/**"):
        for path in glob.glob(pattern, recursive=True):
            try:
                if os.path.isfile(path) and os.path.getsize(path) < 1_000_000:
                    with open(path, "rb") as fh:
                        texts[path] = fh.read().decode("utf-8", "replace")
            except OSError:
                pass
    leaks = {where: text[max(text.index(secret) - 120, 0):text.index(secret) + 40]
             for where, text in texts.items() if secret in text}
    return {"uid": os.getuid(), "read": len(texts), "leaks": leaks}


def found_urls():
    """Database URLs with a password anywhere in this process's memory (objects' attributes, dicts, URL objects)."""
    urls = set()
    for obj in gc.get_objects():
        if type(obj).__name__ == "URL" and getattr(obj, "password", None):
            urls.add(obj.render_as_string(hide_password=False))
            continue
        values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
        try:
            values = list(values) + list(vars(obj).values())
        except Exception:  # no __dict__, or one that will not be read
            pass
        for value in values:
            if isinstance(value, str) and value.startswith("postgresql") and "@" in value and ":" in value[13:]:
                urls.add(value)
    return sorted(url.replace("postgresql+psycopg2://", "postgresql://") for url in urls)


def escalate(x):
    """Grant alice ALL with every login found."""
    import psycopg2

    results = {}
    for url in found_urls():
        try:
            conn = psycopg2.connect(url)
        except Exception as exc:
            results[url.split("@")[-1]] = "cannot connect: " + str(exc).splitlines()[0]
            continue
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT session_user")
            who = cursor.fetchone()[0]
            try:
                cursor.execute("INSERT INTO privileges (id, \"right\", user_id, owner, created, lastupdated)"
                               " SELECT 'stolen', 'ALL', id, 'alice', now(), now() FROM users WHERE name = 'alice'")
                results[who] = "granted"
            except Exception as exc:
                results[who] = "refused: " + str(exc).splitlines()[0]
    return results
'''


@pytest.fixture
def open_dir():
    """A directory on a path every user can walk (/tmp), for a work dir ``nobody`` must reach."""
    path = Path(tempfile.mkdtemp(prefix="pyfi-workdir-"))
    path.chmod(0o755)  # as /var/lib is
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pyfi(python: Path, env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pyfi.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def base_env(home: Path, db: str, redis_base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFI_")}
    base = redis_base.rsplit("/", 1)[0]
    env.update(PYFI_HOME=str(home), PYFI_DB=db, PYFI_USER="admin", PYFI_BROKER=f"{base}/6",
               PYFI_BACKEND=f"{base}/7", PYFI_PUBSUB=f"{base}/7")
    return env


def test_agent_start_u_refuses_at_start_what_cannot_work(shared_python, scram_db, redis_url, open_dir, tmp_path):
    url, _ = scram_db
    env = base_env(tmp_path / "home", url, redis_url)
    done = pyfi(shared_python, env, "agent", "start", "-n", "n1", "-u", "nobody")
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "user nobody cannot reach the agent's work dir" in lines[0] and "--workdir" in lines[0]
    embedded = {k: v for k, v in env.items() if k not in ("PYFI_DB", "PYFI_BROKER", "PYFI_BACKEND", "PYFI_PUBSUB")}
    assert pyfi(shared_python, embedded, "db", "init").returncode == 0
    done = pyfi(shared_python, embedded, "agent", "start", "-n", "n1", "-u", "nobody", "--workdir", str(open_dir / "n1"))
    assert done.returncode == 2 and "cannot run workers on the embedded default" in done.stderr, done
    without_namespaces = subprocess.run(["setpriv", "--bounding-set", "-sys_admin", "--", str(shared_python), "-m",
                                         "pyfi.cli", "agent", "start", "-n", "n1", "-u", "nobody", "--workdir",
                                         str(open_dir / "n1")], env=env, capture_output=True, text=True, timeout=60)
    lines = without_namespaces.stderr.strip().splitlines()
    assert without_namespaces.returncode == 2 and len(lines) == 1, without_namespaces
    assert "builds environments apart" in lines[0] and "CAP_SYS_ADMIN" in lines[0]


def test_processor_code_finds_no_credential_worth_more_than_its_owners_rights(shared_python, scram_db, redis_url,
                                                                                open_dir, tmp_path):
    url, _ = scram_db
    owner_password = make_url(url).password
    with session_scope(url) as session:
        users.add_user(session, Actor("admin"), "alice", "alice@xyz", "pw-alice")
        for right in ("ADD_PROCESSOR", "ADD_SOCKET", "RUN_TASK", "ADD_QUEUE"):
            users.add_privilege(session, Actor("admin"), right, user="alice")
    home = tmp_path / "home"
    env = base_env(home, url, redis_url)
    alice = {**env, "PYFI_USER": "alice", "PYFI_PASSWORD": "pw-alice"}
    repo = make_repo(tmp_path / "repo", {"leaky.py": LEAKY})
    queue = f"q-{tmp_path.name[-8:]}"
    for args in (("add", "queue", "-n", queue), ("add", "processor", "-n", "leaky", "-m", "leaky", "-g", str(repo)),
                 ("add", "socket", "-n", "leak", "-q", queue, "-pn", "leaky", "-t", "leak"),
                 ("add", "socket", "-n", "escalate", "-q", queue, "-pn", "leaky", "-t", "escalate")):
        done = pyfi(shared_python, alice, *args)
        assert done.returncode == 0, (args, done.stderr)
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([str(shared_python), "-m", "pyfi.cli", "agent", "start", "-n", "n1", "-u", "nobody",
                              "--workdir", str(open_dir / "n1")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        shown = lambda: json.loads(pyfi(shared_python, env, "ls", "processor", "-n", "leaky", "--json").stdout)  # noqa: E731
        try:
            wait_for(lambda: shown()["status"] == "running", 90, "the processor to run")
        except AssertionError as exc:
            log_tail = (tmp_path / "agent.log").read_text()[-2000:]
            raise AssertionError(f"{exc}: {shown()['error']}; agent log: {log_tail}") from None
        halves = json.dumps([owner_password[:8], owner_password[8:]])
        leaked = pyfi(shared_python, alice, "task", "run", "-s", "leak", "-d", halves, "--timeout", "60")
        assert leaked.returncode == 0, leaked.stderr
        found = json.loads(leaked.stdout)
        assert found["uid"] == 65534  # the code ran as nobody
        assert found["read"] > 1
        assert found["leaks"] == {}, found["leaks"]
        tried = pyfi(shared_python, alice, "task", "run", "-s", "escalate", "-d", '"x"', "--timeout", "60")
        assert tried.returncode == 0, tried.stderr
        results = json.loads(tried.stdout)
        logged_in = {who: outcome for who, outcome in results.items() if not outcome.startswith("cannot connect")}
        assert logged_in and all(who.startswith("pyfi_w_") for who in logged_in), results  # only its own login
        assert all(outcome.startswith("refused") for outcome in logged_in.values()), results
        whoami = pyfi(shared_python, alice, "whoami")
        assert "ALL" not in whoami.stdout.split("Rights:")[1]
        assert pyfi(shared_python, env, "proc", "pause", "-n", "leaky").returncode == 0  # the agent's word reaches it
        wait_for(lambda: shown()["status"] == "paused", 30, "the worker to pause")
    finally:
        agent.terminate()
        agent.wait(timeout=60)
        log.close()
