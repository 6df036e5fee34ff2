"""The REST API over HTTP, on a real server per database: login, the error answers, every resource, processor actions."""
from __future__ import annotations

import pytest
from apiserver import NOBODY, PASSWORD, ROOT, SUFFIX, ApiNetwork, api_network, build_flow, login

CAROL = f"carol_{SUFFIX}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory) -> ApiNetwork:
    with api_network(request, tmp_path_factory, request.param) as network:
        yield network


def test_a_token_for_the_right_password_and_the_same_401_for_any_wrong_part(api):
    issued = login(api.url, ROOT)
    assert issued.status_code == 200 and issued.json()["token_type"] == "bearer" and issued.json()["expires_at"]
    wrong_password, unknown_user = login(api.url, ROOT, "wrong"), login(api.url, "no-such-user", PASSWORD)
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json() == unknown_user.json() == {"detail": "wrong user name or password (check both and try again)"}
    assert wrong_password.headers["WWW-Authenticate"] == "Bearer"


def test_no_token_or_a_bad_one_is_401(api):
    with api.client(None) as http:
        missing = http.get("/queues")
        bad = http.get("/queues", headers={"Authorization": "Bearer pyfi_nonsense"})
    assert missing.status_code == bad.status_code == 401
    assert "POST /api/token" in missing.json()["detail"] and missing.headers["WWW-Authenticate"] == "Bearer"
    assert "unknown or revoked" in bad.json()["detail"]


def test_a_user_without_the_right_gets_403_naming_it(api):
    with api.client(NOBODY) as http:
        listing, adding = http.get("/queues"), http.post("/queues", json={"name": "q-denied"})
        me = http.get("/users/me")
    assert listing.status_code == adding.status_code == 403
    assert "lacks the right LS_QUEUES" in listing.json()["detail"]
    assert "lacks the right ADD_QUEUE" in adding.json()["detail"]
    assert me.status_code == 200 and me.json()["name"] == NOBODY and me.json()["privileges"] == []


def test_unknown_is_404_a_duplicate_409_and_invalid_input_422_naming_the_field(api):
    with api.client() as http:
        assert http.post("/queues", json={"name": "q-errors"}).status_code == 201
        unknown = http.get("/queues/q-errorz")
        duplicate = http.post("/queues", json={"name": "q-errors"})
        bad_type = http.post("/queues", json={"name": "q-bad", "type": "sideways"})
        bad_rows = http.get("/queues", params={"rows": 0})
        bad_commit = http.post("/processors", json={"name": "p-errors", "module": "m", "gitrepo": "/tmp/repo",
                                                  "commit": "not-hex"})
        unknown_processor = http.post("/sockets", json={"name": "s-errors", "queue": "q-errors", "processor": "nope",
                                             "task": "f"})
    assert unknown.status_code == 404 and "did you mean 'q-errors'" in unknown.json()["detail"]
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
    assert bad_type.status_code == 422 and bad_type.json()["detail"].startswith("invalid type:")
    assert bad_rows.status_code == 422 and "rows:" in bad_rows.json()["detail"]
    assert bad_commit.status_code == 422 and "commit:" in bad_commit.json()["detail"]
    assert unknown_processor.status_code == 404 and "no processor named 'nope'" in unknown_processor.json()["detail"]


def test_a_number_is_a_json_number_and_text_is_printable(api):
    """JSON Schema's integer takes 2.0; true, "2", 2.5 and a control character in a repository are 422, naming the field."""
    processor = {"name": "p-numbers", "module": "m", "gitrepo": "/tmp/repo"}
    with api.client() as http:
        refused = [http.post("/processors", json={**processor, **bad})
                   for bad in ({"workers": True}, {"workers": "2"}, {"workers": 2.5}, {"gitrepo": "/tmp/\x1b[2Jrepo"},
                               {"gitrepo": "   "})]
        whole = http.post("/processors", json={**processor, "workers": 2.0})
    assert [answer.status_code for answer in refused] == [422] * 5
    assert all(answer.json()["detail"].startswith(("invalid workers:", "invalid gitrepo:")) for answer in refused)
    assert whole.status_code == 201 and whole.json()["workers"] == 2


def test_a_queue_in_use_is_409(api):
    with api.client() as http:
        build_flow(http, "inuse")
        refused = http.delete("/queues/q-inuse")
    assert refused.status_code == 409 and "is in use by" in refused.json()["detail"]


#: resource -> (body to add it, change to make, the field the change shows in)
SIMPLE = {
    "nodes": ({"name": "n-crud", "hostname": "host-a"}, {"hostname": "host-b"}, "hostname"),
    "agents": ({"name": "a-crud", "node": "n-crud", "port": 8100}, {"port": 8101}, "port"),
    "workers": ({"name": "w-crud", "agent": "a-crud", "processor": "p-crud"}, {"concurrency": 3}, "concurrency"),
    "schedulers": ({"name": "sc-crud"}, {"strategy": "EFFICIENT"}, "strategy"),
    "deployments": ({"name": "d-crud", "processor": "p-crud", "hostname": "n-crud"}, {"cpus": 2}, "cpus"),
}


def test_every_object_kind_is_added_listed_read_changed_and_deleted(api):
    with api.client() as http:
        build_flow(http, "crud")
        for resource, (body, change, field) in SIMPLE.items():
            added = http.post(f"/{resource}", json=body)
            assert added.status_code == 201, added.text
            changed = http.patch(f"/{resource}/{body['name']}", json=change)
            assert changed.status_code == 200 and changed.json()[field] == change[field], changed.text
        socket = http.patch("/sockets/s2-crud", json={"cron": "*/5 * * * *", "rename": "s3-crud"}).json()
        assert socket["name"] == "s3-crud" and socket["cron"] == "*/5 * * * *" and socket["processor"] == "p-crud"
        assert http.get("/plugs/pl-crud").json()["target"] == "s3-crud"
        assert http.patch("/processors/p-crud", json={"workers": 2, "beat": True}).json()["workers"] == 2
        for resource in ("queues", "processors", "sockets", "plugs", *SIMPLE):
            listing = http.get(f"/{resource}", params={"rows": 1000}).json()
            assert listing["page"] == 1 and listing["total"] == len(listing["items"]) >= 1, resource
        for resource, name in (("deployments", "d-crud"), ("workers", "w-crud"), ("agents", "a-crud"),
                               ("schedulers", "sc-crud"), ("nodes", "n-crud"), ("plugs", "pl-crud"),
                               ("sockets", "s3-crud"), ("processors", "p-crud"), ("queues", "q-crud")):
            assert http.delete(f"/{resource}/{name}").status_code == 204, resource
            assert http.get(f"/{resource}/{name}").status_code == 404, resource


def test_a_listing_comes_in_pages(api):
    with api.client() as http:
        for number in range(3):
            http.post("/nodes", json={"name": f"n-page-{number}"})
        first, second = (http.get("/nodes", params={"rows": 2, "page": page}).json() for page in (1, 2))
    assert first["rows"] == 2 and first["total"] == second["total"] >= 3
    assert len(first["items"]) == 2 and not {n["name"] for n in first["items"]} & {n["name"] for n in second["items"]}


def test_a_scheduler_is_given_nodes_and_a_node_is_cordoned(api):
    with api.client() as http:
        http.post("/nodes", json={"name": "n-sched"})
        http.post("/schedulers", json={"name": "sc-sched"})
        given = http.post("/schedulers/sc-sched/nodes", json={"node": "n-sched"})
        again = http.post("/schedulers/sc-sched/nodes", json={"node": "n-sched"})
        drained = http.post("/nodes/n-sched/drain")
        taken = http.delete("/schedulers/sc-sched/nodes/n-sched")
    assert given.json()["nodes"] == ["n-sched"] and again.status_code == 409
    assert drained.json()["cordoned"] and drained.json()["draining"]
    assert taken.json()["nodes"] == []


def test_processor_actions_request_what_proc_does(api):
    with api.client() as http:
        build_flow(http, "act")
        seen = {action: http.post(f"/processors/p-act/{action}").json()["requested_status"]
                for action in ("pause", "resume", "stop", "start", "restart")}
        unknown = http.post("/processors/p-act/explode")
    with api.client(NOBODY) as http:
        denied = http.post("/processors/p-act/stop")
    assert seen == {"pause": "paused", "resume": "running", "stop": "stopped", "start": "running", "restart": "running"}
    with api.client() as http:  # pinned to a node where no agent ever ran: 'lost', with why, as ls processors shows
        http.patch("/processors/p-act", json={"hostname": "nowhere"})
        shown = http.get("/processors/p-act").json()
        listed = [p for p in http.get("/processors", params={"rows": 100}).json()["items"] if p["name"] == "p-act"]
    assert shown["status"] == listed[0]["status"] == "lost" and "pinned to node 'nowhere'" in shown["error"]
    assert unknown.status_code == 422 and "action" in unknown.json()["detail"]
    assert denied.status_code == 403 and "STOP_PROCESSOR" in denied.json()["detail"]


def test_users_roles_and_privileges(api):
    with api.client() as http:
        added = http.post("/users", json={"name": CAROL, "email": "c@example.org", "password": PASSWORD})
        assert added.status_code == 201, added.text
        assert http.post("/roles", json={"name": "readers"}).status_code == 201
        role = http.post("/roles/readers/users", json={"user": CAROL}).json()
        granted = http.post("/privileges", json={"right": "LS_QUEUES", "role": "readers"})
        again = http.post("/privileges", json={"right": "LS_QUEUES", "role": "readers"})
        typo = http.post("/privileges", json={"right": "LS_QUEUEZ", "user": CAROL})
        email = http.patch(f"/users/{CAROL}", json={"email": "carol@example.org"}).json()["email"]
    carol = login(api.url, CAROL).json()["access_token"]
    with api.client(token=carol) as http:
        allowed = http.get("/queues")
        me = http.get("/users/me").json()
        assert me["roles"] == ["readers"] and me["privileges"] == [] and me["rights"] == ["LS_QUEUES"]
    with api.client() as http:
        assert http.delete("/privileges/roles/readers/LS_QUEUES").status_code == 204
        assert http.post("/privileges", json={"right": "LS_NODES", "user": CAROL}).status_code == 201
        assert http.delete(f"/privileges/users/{CAROL}/LS_NODES").status_code == 204
        assert http.delete(f"/privileges/users/{CAROL}/LS_NODES").status_code == 404
        assert http.delete(f"/roles/readers/users/{CAROL}").json()["users"] == []
        assert http.delete("/roles/readers").status_code == 204
        assert http.delete(f"/users/{CAROL}").status_code == 204
    assert role["users"] == [CAROL] and granted.status_code == 201 and again.status_code == 200
    assert typo.status_code == 422 and "did you mean LS_QUEUES" in typo.json()["detail"]
    assert email == "carol@example.org" and allowed.status_code == 200


def test_revoked_tokens_are_refused(api):
    token = login(api.url, NOBODY).json()["access_token"]
    with api.client(token=token) as http:
        assert http.get("/users/me").status_code == 200
        revoked = http.delete(f"/users/{NOBODY}/tokens").json()["revoked"]
        refused = http.get("/users/me")
    with api.client(NOBODY) as http:  # its own token was revoked too
        assert http.get("/users/me").status_code == 401
    api.tokens[NOBODY] = login(api.url, NOBODY).json()["access_token"]
    with api.client(NOBODY) as http:
        others = http.delete(f"/users/{ROOT}/tokens")
    assert revoked >= 2 and refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert others.status_code == 403 and "UPDATE_USER" in others.json()["detail"]


def test_the_dashboard_cookie_needs_the_header_for_changes(api):
    with api.client(None, cookies={"pyfi_token": api.tokens[ROOT]}) as http:
        read = http.get("/queues")
        unguarded = http.post("/queues", json={"name": "q-cookie"})
        guarded = http.post("/queues", json={"name": "q-cookie"}, headers={"X-Pyfi-Web": "1"})
    assert read.status_code == 200 and guarded.status_code == 201
    assert unguarded.status_code == 401 and "X-Pyfi-Web" in unguarded.json()["detail"]


def test_the_openapi_document_and_docs_are_served(api):
    with api.client(None) as http:
        document, docs = http.get("/openapi.json"), http.get("/docs")
    paths = document.json()["paths"]
    assert {"/api/token", "/api/queues/{name}", "/api/processors/{name}/{action}", "/api/users/me"} <= set(paths)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_repeated_failures_are_slowed_with_retry_after(api):
    """Last in the module: after it the client's address is refused logins for a minute."""
    answers = [login(api.url, NOBODY, "guess").status_code for _ in range(6)]
    slowed = login(api.url, NOBODY)
    first = answers.index(429)  # the failures of the tests before count for the client's address too
    assert set(answers[:first]) == {401} and all(status == 429 for status in answers[first:])
    assert slowed.status_code == 429 and 1 <= int(slowed.headers["Retry-After"]) <= 60
    assert "too many failed logins" in slowed.json()["detail"]


def test_http_edges_a_client_meets(api):
    with api.client() as http:
        http.post("/queues", json={"name": "q-edges"})
        not_taken = http.put("/queues/q-edges")
        past_the_end = http.get("/queues", params={"page": 1000})
        unchanged = http.patch("/queues/q-edges", json={})
    assert not_taken.status_code == 405 and set(not_taken.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
    assert past_the_end.status_code == 404 and "page 1000 does not exist" in past_the_end.json()["detail"]
    assert unchanged.status_code == 200 and unchanged.json()["name"] == "q-edges"


def test_every_cron_expression_the_schema_admits_is_one_the_core_takes():
    import re

    from croniter import croniter
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from pyfi.api.models import _cron_pattern

    @settings(max_examples=100, suppress_health_check=list(HealthCheck), database=None)
    @given(st.from_regex(_cron_pattern(), fullmatch=True))
    def admitted(expression: str) -> None:
        assert expression == "" or croniter.is_valid(expression), expression

    admitted()
    assert all(re.match(_cron_pattern(), e) for e in ("*/5 * * * *", "0 9 * * mon-fri", "@hourly", ""))


def test_every_since_the_schema_admits_is_one_ls_calls_takes():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from pyfi.api.routers.calls import SINCE_PATTERN
    from pyfi.core.calls import parse_since

    @settings(max_examples=100, suppress_health_check=list(HealthCheck), database=None)
    @given(st.from_regex(SINCE_PATTERN, fullmatch=True))
    def admitted(since: str) -> None:
        parse_since(since)  # raises InvalidInput for what it does not take

    admitted()
