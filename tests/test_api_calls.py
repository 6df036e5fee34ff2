"""Calls over HTTP, against ``pyfi api start`` and a network with a running agent.

A call sent with ``POST /api/sockets/{name}/calls`` is answered with its id at
once and read back finished, with its result, events and provenance, from
``GET /api/calls/{id}``; the rights are the CLI's (RUN_TASK to send, READ to
read, CANCEL_TASK to cancel), and so are the errors.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from apiserver_calls import Api, open_api

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory) -> Iterator[Api]:
    yield from open_api(tmp_path_factory.mktemp(f"api-calls-{request.param}"), kind=request.param, request=request)


@pytest.fixture(scope="module")
def echoed(api: Api) -> dict:
    """One echo call sent over HTTP and read back finished (its plug then sends the result on to shout)."""
    return api.ended(api.call("echo", {"greeting": "hello"}))


def test_a_call_sent_over_http_is_read_back_finished_with_its_result(api, echoed):
    assert echoed["state"] == "finished" and echoed["socket"] == api.names["echo"]
    assert echoed["result"] == {"state": "SUCCESS", "value": {"greeting": "hello"}}
    assert echoed["sender"] == api.who("ada") and echoed["tracking"] == echoed["id"] and echoed["parents"] == []
    assert {"received", "prerun", "postrun"} <= {event["name"] for event in echoed["events"]}
    assert echoed["started"] <= echoed["finished"] and echoed["finished"].endswith("Z")  # UTC, with its zone (RFC 3339)


def test_the_answer_is_at_once_and_says_where_the_call_is(api):
    with api.client() as http:
        sent = http.post(f"/api/sockets/{api.names['echo']}/calls", json={"args": ["where"]})
        assert sent.status_code == 202 and sent.headers["location"] == f"/api/calls/{sent.json()['id']}"
        assert sent.json()["ids"] == [sent.json()["id"]] and sent.json()["sockets"] == [api.names["echo"]]
        listed = http.get(sent.headers["location"])  # recorded before the answer: found at once
    assert listed.status_code == 200 and listed.json()["sender"] == api.who("ada")


def test_keyword_arguments_travel_and_a_failure_reads_back_with_its_error(api):
    assert api.ended(api.call("shout", x="quiet"))["result"]["value"] == "QUIET"
    failed = api.ended(api.call("boom", 7))
    assert failed["state"] == "failed" and "boom 7" in failed["error"]
    assert failed["result"]["state"] == "FAILURE"
    assert failed["result"]["value"] == {"type": "ValueError", "message": "boom 7"}


def test_sending_needs_run_task_and_reading_needs_read(api):
    with api.client("rita") as reader:
        refused = reader.post(f"/api/sockets/{api.names['echo']}/calls", json={"args": [1]})
        assert refused.status_code == 403 and f"user '{api.who('rita')}' lacks the right RUN_TASK" in refused.json()["detail"]
        assert reader.get("/api/calls").status_code == 200  # READ is enough to list
    with api.client("nell") as nobody:
        denied = nobody.get("/api/calls")
        assert denied.status_code == 403 and "lacks the right READ" in denied.json()["detail"]
    with api.client(None) as anonymous:
        assert anonymous.post(f"/api/sockets/{api.names['echo']}/calls", json={"args": [1]}).status_code == 401


def test_unknown_socket_or_call_is_404_and_a_bad_body_is_422(api):
    with api.client() as http:
        missing = http.post("/api/sockets/no-such-socket/calls", json={"args": []})
        assert missing.status_code == 404 and "no-such-socket" in missing.json()["detail"]
        assert http.get("/api/calls/00000000-0000-4000-8000-000000000000").status_code == 404
        bad = http.post(f"/api/sockets/{api.names['echo']}/calls", json={"args": "not a list"})
        assert bad.status_code == 422 and "args" in bad.json()["detail"]
        unknown_field = http.post(f"/api/sockets/{api.names['echo']}/calls", json={"args": [], "argz": 1})
        assert unknown_field.status_code == 422
        assert http.get("/api/calls", params={"since": "yesterday-ish"}).status_code == 422
        too_far = http.get("/api/calls", params={"since": "99999999999w"})
        assert too_far.status_code == 422 and "'99999999999w' is not in the form" in too_far.json()["detail"]


def test_listing_filters_like_ls_calls(api, echoed):
    with api.client("rita") as http:
        by_socket = http.get("/api/calls", params={"socket": api.names["echo"], "state": "finished", "rows": 50})
        flow = http.get("/api/calls", params={"tracking": echoed["id"], "since": "1h"})
        first = http.get("/api/calls", params={"rows": 1})
        later = http.get("/api/calls", params={"rows": 1, "after": first.json()["next"]})
        assert http.get("/api/calls", params={"socket": "no-such-socket"}).status_code == 404
    page = by_socket.json()
    assert page["total"] >= 1 and {c["socket"] for c in page["items"]} == {api.names["echo"]}
    assert echoed["id"] in {c["id"] for c in page["items"]} and {c["state"] for c in page["items"]} == {"finished"}
    mine = flow.json()["items"]  # the echo call and the shout call its plug sent
    assert {c["socket"] for c in mine} == {api.names["echo"], api.names["shout"]}
    assert (first.json()["page"], first.json()["rows"], len(first.json()["items"])) == (1, 1, 1)
    assert later.json()["items"][0]["id"] != first.json()["items"][0]["id"]


def test_the_tree_shows_what_the_result_fed(api, echoed):
    def plugged() -> dict | None:
        with api.client("rita") as http:
            tree = http.get(f"/api/calls/{echoed['id']}/tree").json()
        return tree if tree["roots"][0]["children"] else None

    from network import wait_for

    tree = wait_for(plugged, 30, interval=0.3, what="the shout call the plug sent, in the tree")
    root = tree["roots"][0]
    assert (tree["call"], root["call"], root["label"]) == (echoed["id"], echoed["id"], "sample.echo")
    child = root["children"][0]
    assert child["label"] == "sample.upper" and child["children"] == []
    with api.client("rita") as http:
        shouted = api.ended(child["call"])
        assert shouted["parents"] == [echoed["id"]] and shouted["result"]["value"] == "{'GREETING': 'HELLO'}"
        graph = http.get(f"/api/calls/{child['call']}/tree", params={"graph": "true"}).json()
    assert graph["roots"][0]["call"] == echoed["id"]  # the whole flow, drawn from its root


def test_cancel_needs_cancel_task_and_an_ended_call_stays_as_it_was(api, echoed):
    with api.client("rita") as reader:
        refused = reader.post(f"/api/calls/{echoed['id']}/cancel")
        assert refused.status_code == 403 and "CANCEL_TASK" in refused.json()["detail"]
    with api.client() as http:
        ended = http.post(f"/api/calls/{echoed['id'][:8]}/cancel").json()  # a unique start of the id does
    assert (ended["call"], ended["cancelled"], ended["state"]) == (echoed["id"], False, "finished")
