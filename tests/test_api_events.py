"""``GET /api/events``: the lifecycle messages ``pyfi listen`` shows, as Server-Sent Events, for users with READ.

Against ``pyfi api start`` and a network with a running agent: a call sent
over HTTP is seen on the stream from pending to postrun, the ``name`` and
``channel`` filters narrow it like ``listen``'s, and a user without READ gets
no stream at all.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Iterator

import httpx
import pytest

from apiserver_calls import Api, open_api
from network import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory) -> Iterator[Api]:
    yield from open_api(tmp_path_factory.mktemp(f"api-events-{request.param}"), kind=request.param, request=request)


class Stream:
    """An SSE client in a thread: the data of each event, and the comment lines."""

    def __init__(self, api: Api, user: str, **params: str) -> None:
        self.client = api.client(user, timeout=60)
        self.params = {"keepalive": "1", **params}  # a comment a second: the reading thread sees it is done
        self.messages: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.detail: str | None = None
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        try:
            with self.client.stream("GET", "/api/events", params=self.params) as answer:
                self.status = answer.status_code
                if answer.status_code != 200:
                    self.detail = json.loads(answer.read())["detail"]
                    return
                assert answer.headers["content-type"].startswith("text/event-stream")
                for line in answer.iter_lines():
                    if self.closing.is_set():
                        return
                    if line.startswith("data: "):
                        self.messages.append(json.loads(line[len("data: "):]))
                    elif line.startswith(":"):
                        self.comments.append(line)
        except httpx.HTTPError:
            if not self.closing.is_set():
                raise

    def __enter__(self) -> "Stream":
        self.thread.start()
        wait_for(lambda: self.comments or self.status not in (None, 200), 30, what="the stream opened")
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.client.close()
        self.thread.join(timeout=10)

    def states_of(self, call_id: str) -> list[str]:
        return [m["state"] for m in list(self.messages) if m.get("call") == call_id]


def test_a_call_sent_over_http_is_seen_on_the_stream(api):
    with Stream(api, "rita", name="*", channel="task") as stream:  # READ is all it takes, whoever sent the call
        call_id = api.call("echo", "over sse")
        wait_for(lambda: "postrun" in stream.states_of(call_id) or None, 60, interval=0.2,
                 what="the call's messages on the stream")
        api.ended(call_id)
    states = stream.states_of(call_id)
    # (pending shows when the database is polled before a worker took the call: a second's chance)
    assert states[-3:] == ["received", "running", "postrun"] and set(states[:-3]) <= {"pending"}, states
    message = next(m for m in stream.messages if m.get("call") == call_id and m["state"] == "running")
    assert message["channel"] == "task" and message["room"] == f"{api.names['queue']}.p"


def test_the_name_and_channel_filters_narrow_the_stream(api):
    with Stream(api, "ada", name="no-such-queue.*", channel="task") as elsewhere, \
            Stream(api, "ada", name=f"{api.names['queue']}.p", channel="log") as logs:
        call_id = api.call("echo", "filtered")
        api.ended(call_id)
        watched = [call_id]
        with Stream(api, "ada", name=f"{api.names['queue']}.*", channel="task") as mine:
            watched.append(api.call("echo", "matched"))
            wait_for(lambda: "postrun" in mine.states_of(watched[1]) or None, 60, interval=0.2,
                     what="the matched call's messages")
    assert elsewhere.messages == [] and logs.messages == []
    assert len(elsewhere.comments) >= 2  # the first line, then keep-alive comments


def test_no_stream_without_read_and_a_misspelt_channel_is_422(api):
    with Stream(api, "nell") as denied:
        pass
    assert denied.status == 403 and f"user '{api.who('nell')}' lacks the right READ" in (denied.detail or "")
    with api.client("ada") as http:
        wrong = http.get("/api/events", params={"channel": "tasks"})
        assert wrong.status_code == 422 and "no processor publishes on channel 'tasks'" in wrong.json()["detail"]
    with api.client(None) as anonymous:
        assert anonymous.get("/api/events").status_code == 401
