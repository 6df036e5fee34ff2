"""schemathesis against ``/api/openapi.json`` on a real server over PostgreSQL: no 5xx, no answer outside the schema.

Examples are bounded (a few per operation) to keep the module fast; the
token is an administrator's, so the requests reach core rather than stop at
401. Invalid requests (negative mode) are sent to the routes that take a
body. The event stream never ends, so it is left out.
"""
from __future__ import annotations

import pytest
import schemathesis
from apiserver import ROOT, ApiNetwork, api_network, build_flow
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api(request, tmp_path_factory) -> ApiNetwork:
    with api_network(request, tmp_path_factory, "postgres") as network:
        with network.client() as http:  # listings with something in them
            build_flow(http, "schema")
            http.post("/nodes", json={"name": "n-schema"})
            http.post("/roles", json={"name": "r-schema"})
            sent = http.post("/sockets/s1-schema/calls", json={"args": [1]})  # a pending call in GET /api/calls
            assert sent.status_code == 202, sent.text
        yield network


def operations(url: str) -> list:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    return [operation for operation in found if not operation.path.startswith("/api/events")]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_every_answer_in_the_schema(api, mode):
    headers = {"Authorization": f"Bearer {api.tokens[ROOT]}"}
    for operation in operations(api.url):
        if mode is GenerationMode.NEGATIVE and operation.method not in ("post", "patch"):
            continue  # negating a path's name alone is slow to generate, and the positive run covers those routes

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def answers_well(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            answers_well()
        except Unsatisfiable:  # negative: the operation has nothing a request could get wrong (GET /api/users/me)
            assert mode is GenerationMode.NEGATIVE, operation.path
