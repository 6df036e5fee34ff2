"""Reading a network file (YAML or JSON) into objects that remember their lines.

The file is parsed with ``yaml.compose`` (a SafeLoader node tree), not
``yaml.safe_load``, because nodes keep their position: every problem found
later, here or while building, is reported as ``<file>:<line>: ...``. JSON
is YAML too, so the same reader serves both. Nothing here touches the
database; see ``pyfi.core.compose`` for that. The schema is
``pyfi.core.desired.SCHEMA`` plus the layout documented in docs/compose.rst.
"""
from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pyfi.core.desired import SCHEMA, coerce, missing_required
from pyfi.core.names import check_name
from pyfi.errors import InvalidInput, PyfiError

#: top-level sections, in the order objects are built
SECTIONS = {"queues": "queue", "processors": "processor", "plugs": "plug"}
NESTED = {"processor": ("sockets", "socket")}  # processors hold their sockets
MERGE_TAG = "tag:yaml.org,2002:merge"
EXTENSION = "x-"  # top-level keys for YAML anchors (defaults), ignored otherwise
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Item:
    """One object the file describes: its fields and where each was written."""

    kind: str
    name: str
    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


@dataclass
class Network:
    path: str
    items: list[Item]

    def of_kind(self, kind_name: str) -> list[Item]:
        return [i for i in self.items if i.kind == kind_name]


class FileProblem(InvalidInput):
    """A problem at a place in a network file."""

    def __init__(self, path: str, line: int | None, message: str, hint: str | None) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}", hint)
        self.line = line


def located(error: PyfiError, path: str, line: int | None, what: str) -> PyfiError:
    """``error`` again (same class, same exit code), prefixed with its place in the file."""
    where = f"{path}:{line}" if line else path
    return type(error)(f"{where}: {what}: {error.message}", error.hint)


def load(path: str | Path, env: dict[str, str] | None = None) -> Network:
    """Parse and validate ``path``; raise FileProblem naming the line of the first problem."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblem(shown, None, f"cannot read the network file: {exc}", "check the path given to -f") from exc
    root = parse(shown, text)
    return Reader(shown, os.environ if env is None else env).network(root)


def parse(path: str, text: str) -> yaml.Node | None:
    if path.endswith(".json"):
        _check_json(path, text)  # json's own messages are clearer for JSON
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise FileProblem(path, line, f"syntax error: {exc.problem or exc.context}",
                          "fix the indentation, quoting or brackets on that line") from exc
    except yaml.YAMLError as exc:
        raise FileProblem(path, None, f"syntax error: {exc}", "fix the file's syntax") from exc


def _check_json(path: str, text: str) -> None:
    try:
        json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        message = getattr(exc, "msg", str(exc))
        raise FileProblem(path, line, f"JSON syntax error: {message}", "fix the JSON on that line") from exc


class Reader:
    """Walks the node tree, checking the layout and each field's value."""

    def __init__(self, path: str, env: Any) -> None:
        self.path, self.env = path, env
        self.constructor = yaml.constructor.SafeConstructor()
        self.items: list[Item] = []
        self.seen: dict[tuple[str, str], int] = {}

    def fail(self, node: yaml.Node | None, message: str, hint: str | None = None) -> FileProblem:
        return FileProblem(self.path, line_of(node), message, hint)

    def network(self, root: yaml.Node | None) -> Network:
        if root is None:
            raise self.fail(None, "the file is empty", f"describe {', '.join(SECTIONS)} (see docs/compose.rst)")
        for key_node, value_node in self.mapping(root, "the top level"):
            section = key_node.value
            if section.startswith(EXTENSION):
                continue
            if section not in SECTIONS:
                hint = _choose(section, list(SECTIONS)) + f", or {EXTENSION}* for anchors"
                raise self.fail(key_node, f"unknown section {section!r}", hint)
            for entry in self.sequence(value_node, section):
                self.item(SECTIONS[section], entry)
        order = list(SECTIONS.values()) + ["socket"]
        self.items.sort(key=lambda i: order.index(i.kind) if i.kind != "plug" else len(order))
        return Network(self.path, self.items)

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping of key: value lines", "indent the keys under it")
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, f"a key in {what} is not a plain name", "use name: value")
            if key_node.tag == MERGE_TAG:
                continue
            if key_node.value in seen:
                raise self.fail(key_node, f"{key_node.value!r} is given twice in {what}", "keep one of them")
            seen.add(key_node.value)
        self.constructor.flatten_mapping(node)  # YAML merge keys (<<: *defaults) come first...
        pairs = {key.value: (key, value) for key, value in node.value}  # ...so the entry's own keys win
        return list(pairs.values())

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list (lines starting with '- ')",
                            "write each of its entries as a '- name: ...' item")
        return list(node.value)

    def item(self, kind_name: str, node: yaml.Node, parent: Item | None = None) -> None:
        what = f"a {kind_name}"
        pairs = self.mapping(node, what)
        item = Item(kind_name, "", line_of(node) or 0)
        nested = NESTED.get(kind_name)
        children: list[yaml.Node] = []
        for key_node, value_node in pairs:
            key = key_node.value
            if nested and key == nested[0]:
                children = self.sequence(value_node, f"{kind_name} {nested[0]}")
            elif key == "name":
                item.name = self.name(value_node, kind_name)
            elif parent is not None and key == parent.kind:
                raise self.fail(key_node, f"a {kind_name} listed under {parent.kind} {parent.name!r} belongs to it",
                                f"remove `{key}:`, or list the {kind_name} under the other {parent.kind}")
            else:
                self.field(item, key_node, value_node)
        if not item.name:
            raise self.fail(node, f"{what} has no name", "add a line `name: ...` to it")
        if parent is not None:
            item.fields = {parent.kind: parent.name, **item.fields}  # shown first in the plan
            item.lines.setdefault(parent.kind, parent.line)
        self.check_complete(item, node)
        self.items.append(item)
        for child in children:
            self.item(nested[1], child, item)

    def name(self, node: yaml.Node, kind_name: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str):
            value = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        try:
            name = check_name(value if isinstance(value, str) else None, kind_name)
        except InvalidInput as exc:
            raise self.fail(node, exc.message, "give a name of 1-200 characters") from exc
        previous = self.seen.get((kind_name, name))
        if previous is not None:
            raise self.fail(node, f"{kind_name} {name!r} is defined twice (first on line {previous})",
                            "rename or remove one of them")
        self.seen[(kind_name, name)] = line_of(node) or 0
        return name

    def field(self, item: Item, key_node: yaml.Node, value_node: yaml.Node) -> None:
        key = key_node.value
        schema = SCHEMA[item.kind]
        if key not in schema:
            allowed = ["name", *schema] + ([NESTED[item.kind][0]] if item.kind in NESTED else [])
            raise self.fail(key_node, f"unknown key {key!r} in a {item.kind}", _choose(key, allowed))
        value = self.scalar(value_node)
        try:
            item.fields[key] = coerce(item.kind, key, value)
        except InvalidInput as exc:
            raise self.fail(value_node, exc.message, exc.hint) from exc
        item.lines[key] = line_of(value_node) or item.line

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, "expected a single value here, not a list or mapping", "write key: value")
        value = self.constructor.construct_object(node, deep=True)
        return self.expand(value, node) if isinstance(value, str) else value

    def expand(self, text: str, node: yaml.Node) -> str:
        """``${NAME}`` is replaced by the environment variable NAME (for paths and secrets)."""

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name not in self.env:
                raise self.fail(node, f"environment variable {name} is not set", f"export {name}=... before the build")
            return self.env[name]

        return ENV_VAR.sub(substitute, text)

    def check_complete(self, item: Item, node: yaml.Node) -> None:
        missing = missing_required(item.kind, item.fields)
        if missing:
            raise self.fail(node, f"{item.kind} {item.name!r} is missing {', '.join(missing)}",
                            f"add {', '.join(f'`{k}: ...`' for k in missing)} to it")


def line_of(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None and node.start_mark is not None else None


def _choose(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1)
    prefix = f"did you mean {close[0]!r}? " if close else ""
    return f"{prefix}allowed: {', '.join(allowed)}"
