"""Sphinx directive ``.. openapi-routes::``: the REST API's routes, read from the OpenAPI document at build time.

The document comes from :func:`pyfi.api.app.create_app` (nothing is served
and no database is opened), so the reference lists exactly the routes the
server has: method, path, what it does, the body it takes and answers with.
"""
from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

METHODS = ("get", "post", "patch", "put", "delete")


def model_name(content: dict[str, Any]) -> str:
    """The schema a request or response body refers to, by name ("" when it has none)."""
    for media in content.values():
        schema = media.get("schema", {})
        ref = schema.get("$ref") or schema.get("items", {}).get("$ref", "")
        if ref:
            return ref.rsplit("/", 1)[-1]
        if schema.get("type"):
            return schema["type"]
    return ""


def literal(name: str) -> str:
    return f"``{name}``" if name else ""


def rows(document: dict[str, Any]) -> list[str]:
    lines = []
    for path, item in document["paths"].items():
        for method in (m for m in METHODS if m in item):
            operation = item[method]
            body = model_name(operation.get("requestBody", {}).get("content", {}))
            ok = next((code for code in operation["responses"] if code.startswith("2")), "")
            answer = model_name(operation["responses"].get(ok, {}).get("content", {}))
            lines += [f"   * - ``{method.upper()} {path}``", f"     - {operation.get('summary', '')}",
                      f"     - {literal(body)}", f"     - {ok} {literal(answer)}".rstrip()]
    return lines


class OpenApiRoutes(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from pyfi.api.app import create_app

        document = create_app({"db": "sqlite:///:memory:"}).openapi()
        table = [".. list-table::", "   :header-rows: 1", "   :widths: 30 35 15 20", "",
                 "   * - Route", "     - What it does", "     - Body", "     - Answer", *rows(document)]
        container = nodes.container()
        self.state.nested_parse(StringList(table), self.content_offset, container)
        return container.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("openapi-routes", OpenApiRoutes)
    return {"parallel_read_safe": True}
