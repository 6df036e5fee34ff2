"""Calls sent straight to the broker run only when signed by a sender who may run them.

A plain Celery client can reach a socket's broker queue without pyfi: the
worker must refuse what is unsigned, signed by a key it does not know,
changed after signing, signed by a user without RUN_TASK, or not a task of
its sockets (Celery's own ``celery.accumulate``), record each refusal with
its reason, and record who sent each call it runs.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import select

from network import Network, build, wait_for
from pyfi.config import resolve
from pyfi.core import users
from pyfi.core.access import Actor
from pyfi.core.keys import user_signer
from pyfi.db.engine import session_scope
from pyfi.db.models import Call, Event, Socket
from pyfi.messaging.app import make_app
from pyfi.messaging.routing import broker_queue, kombu_queue
from pyfi.masking import printable
from pyfi.messaging.signing import SIG_HEADER

pytestmark = pytest.mark.slow
ADMIN = Actor("admin")


def call_row(net: Network, call_id: str) -> tuple[str, str | None, list[str]] | None:
    """(state, sender, event notes) of a recorded call, or None."""
    with session_scope(net.db_url) as session:
        call = session.get(Call, call_id)
        if call is None:
            return None
        notes = list(session.scalars(select(Event.note).where(Event.call_id == call_id).order_by(Event.created)))
        return str(call.state), call.sender, notes


def route_of(net: Network, socket_name: str) -> tuple[str, str, str, str]:
    """(broker queue, socket id, task, processor id) of a socket."""
    with session_scope(net.db_url) as session:
        socket = session.scalar(select(Socket).where(Socket.name == socket_name))
        return broker_queue(socket), socket.id, socket.task.path, socket.processor_id


def send(net: Network, socket_name: str, args: list, *, signer=None, task: str | None = None,
         tamper: bool = False, change: Callable[[dict, tuple], None] | None = None, headers: dict | None = None,
         **options) -> str:
    """Publish a call to the socket's broker queue as any Celery client could (signed by ``signer``, if given).

    ``tamper`` changes its first argument after signing, ``change(headers, body)`` whatever it likes; ``headers``
    replace pyfi's (the socket's and processor's ids); ``options`` go to Celery's ``send_task``.
    """
    from celery import signals

    queue, socket_id, task_name, processor_id = route_of(net, socket_name)
    app = make_app(resolve(env=net.env), signer=signer)
    call_id = options.pop("task_id", None) or str(uuid.uuid4())

    def change_after_signing(headers=None, body=None, **_):
        if tamper and headers.get(SIG_HEADER):
            body[0][0] = "changed"
        if change is not None:
            change(headers, body)

    signals.before_task_publish.connect(change_after_signing, weak=False)
    try:
        app.send_task(task or task_name, args=args, task_id=call_id, queue=kombu_queue(queue), routing_key=queue,
                      declare=[kombu_queue(queue)],
                      headers=headers if headers is not None else {"pyfi_socket": socket_id, "pyfi_processor": processor_id},
                      **options)
    finally:
        signals.before_task_publish.disconnect(change_after_signing)
        app.close()
    return call_id


def finished(net: Network, call_id: str) -> tuple:
    """The row of a call once it finished."""
    return wait_for(lambda: (call_row(net, call_id) or ("",))[0] == "finished" and call_row(net, call_id), 30,
                    f"call {call_id} to finish")


def refused_with(net: Network, call_id: str, reason: str) -> tuple:
    row = wait_for(lambda: call_row(net, call_id), 30, f"call {call_id} to be recorded")
    assert row[0] == "refused", row
    assert any(reason in note for note in row[2]), row
    return row


def test_only_calls_signed_by_a_sender_with_run_task_run(net: Network):
    names = build(net, {"echo": "echo"})
    with session_scope(net.db_url) as session:
        users.add_user(session, ADMIN, "joe", "joe@xyz", "pw-joe")  # no rights at all
        users.add_user(session, ADMIN, "ann", "ann@xyz", "pw-ann")
        users.add_privilege(session, ADMIN, "RUN_TASK", user="ann")
        joe, ann = user_signer(session, Actor("joe")), user_signer(session, Actor("ann"))
        admin = user_signer(session, ADMIN)
    net.start_agent("n1")
    net.wait_status("p", "running", 60)

    refused_with(net, send(net, names["echo"], ["secret-argument-4711"]), "not signed")
    refused_with(net, send(net, names["echo"], ["x"], task="celery.accumulate"), "not a task of this worker's sockets")
    refused_with(net, send(net, names["echo"], ["x"], task="celery.accumulate", signer=admin), "not a task of this")
    row = refused_with(net, send(net, names["echo"], ["x"], signer=joe), "user 'joe' lacks the right RUN_TASK")
    assert row[1] == "joe"
    refused_with(net, send(net, names["echo"], ["x"], signer=admin, tamper=True), "does not match")

    ran = send(net, names["echo"], ["from ann"], signer=ann)
    row = wait_for(lambda: (call_row(net, ran) or ("",))[0] == "finished" and call_row(net, ran), 30, "ann's call")
    assert row[1] == "ann"
    done = net.cli("task", "run", "-s", names["echo"], "-d", '"cli"', "--no-wait").stdout.strip()
    assert wait_for(lambda: (call_row(net, done) or ("",))[0] == "finished" and call_row(net, done), 30)[1] == "admin"
    calls = net.json("ls", "calls", "--rows", "50")["rows"]
    assert sorted(c["state"] for c in calls) == ["finished"] * 2 + ["refused"] * 5
    logs = "".join(path.read_text() for path in Path(net.env["PYFI_HOME"]).glob("agents/n1/run/*/worker.log"))
    assert "refused call" in logs and "not signed" in logs
    assert "secret-argument-4711" not in logs  # a refusal is logged in one line, never with the message's body


def test_a_revoked_right_stops_a_senders_calls_within_a_second_or_two(net: Network):
    names = build(net, {"echo": "echo"})
    with session_scope(net.db_url) as session:
        users.add_user(session, ADMIN, "ann", "ann@xyz", "pw-ann")
        users.add_privilege(session, ADMIN, "RUN_TASK", user="ann")
        ann = user_signer(session, Actor("ann"))
    net.start_agent("n1")
    net.wait_status("p", "running", 60)
    first = send(net, names["echo"], ["before"], signer=ann)
    wait_for(lambda: (call_row(net, first) or ("",))[0] == "finished", 30, "ann's first call")
    with session_scope(net.db_url) as session:
        users.delete_privilege(session, ADMIN, "RUN_TASK", user="ann")

    def refused_now() -> bool:  # the worker trusts what it read for at most a second
        call_id = send(net, names["echo"], ["after"], signer=ann)
        row = wait_for(lambda: call_row(net, call_id), 30, "the call to be recorded")
        return row[0] == "refused"

    wait_for(refused_now, 10, "ann's calls to be refused", interval=0.5)


def step_to(net: Network, socket_name: str, args: list) -> dict:
    """A workflow step calling ``socket_name`` with ``args``, as a Celery signature travels in a body's embed."""
    queue, socket_id, task_name, processor_id = route_of(net, socket_name)
    return {"task": task_name, "args": args, "kwargs": {}, "subtask_type": None, "immutable": True,
            "options": {"task_id": str(uuid.uuid4()), "queue": queue, "routing_key": queue,
                        "headers": {"pyfi_socket": socket_id, "pyfi_processor": processor_id}}}


def test_a_step_added_to_a_signed_call_is_refused_and_a_signed_one_runs(net: Network):
    names = build(net, {"echo": "echo", "upper": "upper"})
    with session_scope(net.db_url) as session:
        users.add_user(session, ADMIN, "ann", "ann@xyz", "pw-ann")
        users.add_privilege(session, ADMIN, "RUN_TASK", user="ann")
        ann = user_signer(session, Actor("ann"))
    net.start_agent("n1")
    net.wait_status("p", "running", 60)

    injected = step_to(net, names["upper"], ["injected"])
    added = send(net, names["echo"], ["legit"], signer=ann,  # a broker-only attacker adds a step to ann's call
                 change=lambda headers, body: body[2].update(chain=[injected]))
    refused_with(net, added, "does not match")
    assert call_row(net, injected["options"]["task_id"]) is None

    signed = step_to(net, names["upper"], ["signed"])
    first = send(net, names["echo"], ["legit"], signer=ann, chain=[signed])
    assert finished(net, first)[1] == "ann"
    assert finished(net, signed["options"]["task_id"])[1] == "p (admin)"  # sent by p's worker once ann's call ended


def with_ann(net: Network) -> object:
    """User ann, holding RUN_TASK: her signer."""
    with session_scope(net.db_url) as session:
        users.add_user(session, ADMIN, "ann", "ann@xyz", "pw-ann")
        users.add_privilege(session, ADMIN, "RUN_TASK", user="ann")
        return user_signer(session, Actor("ann"))


def test_celery_chord_unlock_is_refused_whoever_signed_it(net: Network):
    names = build(net, {"echo": "echo", "upper": "upper"})
    ann = with_ann(net)
    net.start_agent("n1")
    net.wait_status("p", "running", 60)
    callback = step_to(net, names["upper"], ["sent by the unlock"])  # ann's body, to go out under p's key
    unlock = send(net, names["echo"], [str(uuid.uuid4()), callback], signer=ann, task="celery.chord_unlock",
                  kwargs={"interval": 1, "max_retries": None, "result": []})
    refused_with(net, unlock, "not a task of this worker's sockets")
    assert call_row(net, callback["options"]["task_id"]) is None


def test_a_retry_goes_as_its_sender_signed_it_and_stops_once_their_right_is_revoked(net: Network):
    names = build(net, {"boom": "boom"}, "p", "-r", "5")  # retried after 0.5, 1, 2, 4 and 8 s
    ann = with_ann(net)
    net.start_agent("n1")
    net.wait_status("p", "running", 60)
    call = send(net, names["boom"], ["x"], signer=ann)
    wait_for(lambda: any(n.startswith("Retry") for n in (call_row(net, call) or ("", "", []))[2]), 30, "a retry")
    with session_scope(net.db_url) as session:
        users.delete_privilege(session, ADMIN, "RUN_TASK", user="ann")
    row = wait_for(lambda: (lambda r: r if r and any("lacks the right RUN_TASK" in n for n in r[2]) else None)(
        call_row(net, call)), 30, "a retry of ann's call to be refused")
    assert row[0] == "retry" and row[1] == "ann", row  # never run again, never sent as p's
    assert not any(n.startswith("Failure") for n in row[2]), row


def call_columns(net: Network, call_id: str) -> dict | None:
    """What ``ls call`` shows of a call: its state, name, sender, socket and tracking."""
    with session_scope(net.db_url) as session:
        call = session.get(Call, call_id)
        return None if call is None else {"state": str(call.state), "name": call.name, "sender": call.sender,
                                           "socket": call.socket_id, "tracking": call.tracking}


def refused_event(net: Network, call_id: str) -> bool:
    row = call_row(net, call_id)
    return bool(row) and any(note.startswith("Refused task") for note in row[2])


def test_a_refusal_never_changes_the_call_whose_id_it_takes(net: Network):
    names = build(net, {"echo": "echo"})
    ann = with_ann(net)
    with session_scope(net.db_url) as session:
        users.add_user(session, ADMIN, "joe", "joe@xyz", "pw-joe")  # no rights
        joe = user_signer(session, Actor("joe"))
    net.start_agent("n1")
    net.wait_status("p", "running", 60)
    _, socket_id, task_name, _ = route_of(net, names["echo"])
    ran = {"state": "finished", "name": task_name, "sender": "ann", "socket": socket_id}

    def joes_copy(call_id: str) -> None:  # a message with the id of ann's call, naming another task and flow
        send(net, names["echo"], ["x"], signer=joe, task="attacker.name", task_id=call_id, root_id="attacker-tracking")
        wait_for(lambda: refused_event(net, call_id), 30, f"the refusal of {call_id}")

    first = str(uuid.uuid4())
    joes_copy(first)  # taken before ann's call (a broker-only attacker puts it at the popping end)
    send(net, names["echo"], ["legit"], signer=ann, task_id=first)
    wait_for(lambda: call_columns(net, first) == {**ran, "tracking": first}, 30, "ann's call as it ran")

    after = send(net, names["echo"], ["legit"], signer=ann)
    finished(net, after)
    joes_copy(after)
    assert call_columns(net, after) == {**ran, "tracking": after}


def test_malformed_headers_are_refused_at_once_and_never_wait_for_the_database(net: Network):
    names = build(net, {"echo": "echo"})
    net.start_agent("n1")
    net.wait_status("p", "running", 60)
    _, socket_id, task_name, processor_id = route_of(net, names["echo"])
    ours = {"pyfi_socket": socket_id, "pyfi_processor": processor_id}
    poisons = [("other.task", {"pyfi_socket": [socket_id]}), (task_name, {"pyfi_processor": {"id": 1}}),
               (task_name, {"pyfi_key": "k" * 100_000, "pyfi_sig": "00"}), ("x" * 100_000, {}),
               (task_name, {"pyfi_plug": "\x00"}), (task_name, {"group_index": "0"})]
    sent = [send(net, names["echo"], ["x"], task=task, headers=ours, change=lambda headers, _, poison=poison:
                 headers.update(poison)) for task, poison in poisons]
    for call_id in sent:
        refused_with(net, call_id, "the call's headers are not pyfi's")
    after = net.cli("task", "run", "-s", names["echo"], "-d", '"after"', "--no-wait").stdout.strip()
    assert finished(net, after)[1] == "admin"
    logs = "".join(path.read_text() for path in Path(net.env["PYFI_HOME"]).glob("agents/n1/run/*/worker.log"))
    assert "goes back to its queue" not in logs


def test_a_refused_calls_name_reaches_no_terminal_raw(net: Network):
    names = build(net, {"echo": "echo"})
    net.start_agent("n1")
    net.wait_status("p", "running", 60)
    name = "amod.echo\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b[32mALL CALLS FINISHED OK\x1b[0m"
    call_id = send(net, names["echo"], ["x"], task=name)
    row = refused_with(net, call_id, "the call's headers are not pyfi's: 'task'")
    assert not any("\x1b" in note for note in row[2]), row
    assert call_columns(net, call_id)["name"] == printable(name)
    shown = net.cli("ls", "calls").stdout + net.cli("ls", "call", "--id", call_id).stdout
    assert "\x1b" not in shown and "\x07" not in shown and "amod.echo\\x1b[2J" in shown
