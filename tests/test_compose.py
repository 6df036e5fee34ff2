"""``pyfi compose build``: a network file, built idempotently in one transaction, on both databases."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent

NETWORK = """\
queues:
  - name: q1
    type: direct
  - name: q2
    type: fanout
processors:
  - name: p1
    module: sample
    gitrepo: ${REPO}
    branch: main
    workers: 2
    sockets:
      - name: greet
        queue: q1
        task: do_something
      - name: shout
        queue: q1
        task: do_this
        interval: 30
  - name: p2
    module: sample
    gitrepo: ${REPO}
    sockets:
      - name: count
        queue: q2
        task: word_count
        wait: true
plugs:
  - name: shout-greet
    source: shout
    target: greet
    queue: q1
  - name: greet-count
    source: greet
    target: count
    queue: q2
    type: ERROR
    position: 1
"""


@pytest.fixture
def write(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("REPO", "/srv/git/sample")

    def write(text: str, name: str = "network.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


def snapshot(db_url: str) -> dict:
    """Every row of the network tables, columns and all: 'unchanged' means equal snapshots."""
    from pyfi.db import models as m
    from pyfi.db.engine import session_scope

    with session_scope(db_url) as session:
        return {model.__tablename__: sorted((json.dumps(r.to_dict(), default=str, sort_keys=True)
                                             for r in session.scalars(select(model))))
                for model in (m.Queue, m.Processor, m.Socket, m.Plug, m.Task)}


def build(run_cli, path: str, *extra: str):
    return run_cli("compose", "build", "-f", path, *extra)


def test_build_creates_everything_then_a_second_build_changes_nothing(db_url, run_cli, write):
    path = write(NETWORK)
    first = build(run_cli, path)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[-1] == f"{path}: 9 created, 0 updated, 0 unchanged"
    assert "create socket shout: processor=p1, queue=q1, task=do_this, interval=30" in first.output
    assert "create processor p1: module=sample, gitrepo=/srv/git/sample, branch=main, workers=2" in first.output
    shown = json.loads(run_cli("ls", "plug", "-n", "greet-count", "--json").output)
    assert (shown["type"], shown["position"], shown["source"], shown["target"]) == ("ERROR", 1, "greet", "count")
    before = snapshot(db_url)
    second = build(run_cli, path)
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[-1] == f"{path}: no changes (9 objects unchanged)"
    assert all(line.startswith("unchanged ") for line in second.output.splitlines()[:-1])
    assert snapshot(db_url) == before


def test_dry_run_prints_the_plan_and_changes_nothing(db_url, run_cli, write):
    path = write(NETWORK)
    empty = snapshot(db_url)
    plan = build(run_cli, path, "--dry-run")
    assert plan.exit_code == 0, plan.output
    summary = f"{path}: dry run, nothing changed; a build would create 9, update 0, leave 0 unchanged"
    assert plan.output.splitlines()[-1] == summary
    assert snapshot(db_url) == empty
    assert build(run_cli, path).exit_code == 0
    edited = write(NETWORK.replace("workers: 2", "workers: 4").replace("task: do_this", "task: fail"))
    built = snapshot(db_url)
    plan = build(run_cli, edited, "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "update processor p1: workers 2 -> 4" in plan.output.splitlines()
    assert "update socket shout: task do_this -> fail" in plan.output.splitlines()
    assert plan.output.splitlines()[-1].endswith("a build would create 0, update 2, leave 7 unchanged")
    assert snapshot(db_url) == built
    applied = build(run_cli, edited)
    assert applied.output.splitlines()[-1] == f"{edited}: 0 created, 2 updated, 7 unchanged"
    assert json.loads(run_cli("ls", "socket", "-n", "shout", "--json").output)["task"] == "sample.fail"


def test_json_files_and_the_example_network(db_url, run_cli, write, tmp_path, monkeypatch):
    data = {"queues": [{"name": "jq", "type": "topic"}],
            "processors": [{"name": "jp", "module": "sample", "gitrepo": "/x",
                            "sockets": [{"name": "js", "queue": "jq", "task": "do_this"}]}]}
    result = build(run_cli, write(json.dumps(data, indent=2), "network.json"))
    assert result.exit_code == 0 and "3 created" in result.output, result.output
    monkeypatch.setenv("SAMPLE_REPO", str(tmp_path / "repo"))
    example = str(ROOT / "examples" / "network.yaml")
    result = build(run_cli, example)
    assert result.exit_code == 0, result.output
    assert build(run_cli, example).output.splitlines()[-1].startswith(f"{example}: no changes")


BAD_FILES = [
    # (file text, line named, words of the message)
    ("queues:\n  - name: q\n    type: drect\n", 3, "unknown queue type 'drect'"),
    ("queues:\n  - name: q\n    tipe: direct\n", 3, "unknown key 'tipe' in a queue (did you mean 'type'?"),
    ("queues:\n  - name: q\n   type: direct\n", 3, "syntax error"),
    ("queues:\n  - name: q\nprocessors:\n  - name: p\n    module: sample\n", 4, "processor 'p' is missing gitrepo"),
    ("processors:\n  - name: p\n    module: sample\n    gitrepo: /x\n    workers: two\n", 5,
     "'workers' must be a whole number"),
    ("processors:\n  - name: p\n    module: sam-ple\n    gitrepo: /x\n", 3, "invalid processor module 'sam-ple'"),
    ("queues:\n  - name: q\n  - name: q\n", 3, "queue 'q' is defined twice (first on line 2)"),
    ("queue:\n  - name: q\n", 1, "unknown section 'queue'"),
    ("queues:\n  - name: q\n    type: direct\n    type: fanout\n", 4, "'type' is given twice in a queue"),
    ("processors:\n  - name: p\n    module: sample\n    gitrepo: /x\n    sockets:\n      - name: s\n"
     "        processor: other\n", 7, "a socket listed under processor 'p' belongs to it"),
    ("queues:\n  - name: q\n    type: ${NOT_SET_ANYWHERE}\n", 3, "environment variable NOT_SET_ANYWHERE is not set"),
    # references are resolved while building: earlier objects were already added, and must vanish
    ("queues:\n  - name: q\nprocessors:\n  - name: p\n    module: sample\n    gitrepo: /x\n    sockets:\n"
     "      - name: s\n        queue: nowhere\n        task: f\n", 9, "socket 's': no queue named 'nowhere'"),
    ("queues:\n  - name: q\nprocessors:\n  - name: p\n    module: sample\n    gitrepo: /x\n    sockets:\n"
     "      - name: s\n        queue: q\n        task: f\nplugs:\n  - name: pl\n    source: s\n    target: ss\n"
     "    queue: q\n", 14, "plug 'pl': no socket named 'ss' (did you mean 's'?"),
]


@pytest.mark.parametrize("text,line,words", BAD_FILES, ids=[w.split("'")[0].strip() or w for _, _, w in BAD_FILES])
def test_an_invalid_file_is_rejected_naming_its_line_and_changes_nothing(db_url, run_cli, write, text, line, words):
    assert build(run_cli, write("queues:\n  - name: existing\n")).exit_code == 0
    before = snapshot(db_url)
    path = write(text)
    for extra in ((), ("--dry-run",)):
        result = build(run_cli, path, *extra)
        assert result.exit_code == 2, result.output
        first = result.output.strip().splitlines()[0]
        assert first.startswith(f"Error: {path}:{line}: "), result.output
        assert words in first, result.output
        assert snapshot(db_url) == before


def test_a_user_without_rights_changes_nothing(db_url, run_cli, write, monkeypatch):
    from pyfi.db.engine import session_scope
    from pyfi.db.models import User

    with session_scope(db_url) as session:
        session.add(User(name="joe", owner="admin"))
    before = snapshot(db_url)
    monkeypatch.setenv("PYFI_USER", "joe")
    result = build(run_cli, write(NETWORK))
    assert result.exit_code == 1
    assert "network.yaml:2: queue 'q1': user 'joe' lacks the right ADD_QUEUE" in result.output
    assert snapshot(db_url) == before


def test_anchors_merge_keys_and_extension_sections(db_url, run_cli, write):
    text = """\
        x-sample: &sample
          module: sample
          gitrepo: /srv/sample
          branch: main
        processors:
          - <<: *sample
            name: pa
          - <<: *sample
            name: pb
            branch: dev
        """
    result = build(run_cli, write(text))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == ["create processor pa: module=sample, gitrepo=/srv/sample, branch=main",
                                              "create processor pb: module=sample, gitrepo=/srv/sample, branch=dev"]
