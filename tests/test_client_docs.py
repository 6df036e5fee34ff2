"""The examples of docs/client.rst, run as written against a real network.

Every ``.. code-block:: python`` of the page is an example, run in page
order as its own script (a subprocess, as a reader would run it), and the
``.. code-block:: text`` captioned "Output" after it is exactly what it must
print. A python block captioned ``<name>.py`` is a processor module instead:
it is committed to the processor repository beside sample.py. Each stack
(SQLite embedded; PostgreSQL + Redis) gets one agent for the whole page.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from clientnet import Network, open_network

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "client.rst"
SAMPLE = ROOT / "examples" / "processors" / "sample.py"
DIRECTIVE = re.compile(r"^\.\. code-block:: (\w+)\s*$")
SCRIPT_TIMEOUT = 180

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    language: str
    caption: str | None
    code: str
    section: str
    line: int


@dataclass(frozen=True)
class Example:
    section: str
    line: int
    code: str
    expected: str | None


def blocks(text: str) -> list[Block]:
    """Every code-block directive of an rst page: language, caption, dedented body, section title."""
    lines = text.splitlines()
    found, section, i = [], "", 0
    while i < len(lines):
        if i + 1 < len(lines) and lines[i].strip() and re.fullmatch(r"[-=~]{3,}", lines[i + 1].strip()):
            section = lines[i].strip()
        match = DIRECTIVE.match(lines[i])
        if not match:
            i += 1
            continue
        start, i = i + 1, i + 1
        caption = None
        while i < len(lines) and re.match(r"^\s+:\w+:", lines[i]):
            if lines[i].strip().startswith(":caption:"):
                caption = lines[i].split(":caption:", 1)[1].strip()
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
            body.append(lines[i])
            i += 1
        found.append(Block(match.group(1), caption, _dedent(body), section, start))
    return found


def _dedent(body: list[str]) -> str:
    import textwrap

    return textwrap.dedent("\n".join(body)).strip("\n") + "\n"


def modules(page: list[Block]) -> dict[str, str]:
    return {b.caption: b.code for b in page if b.language == "python" and (b.caption or "").endswith(".py")}


def examples(page: list[Block]) -> list[Example]:
    found = []
    for index, block in enumerate(page):
        if block.language != "python" or (block.caption or "").endswith(".py"):
            continue
        after = page[index + 1] if index + 1 < len(page) else None
        expected = after.code if after and after.language == "text" and after.caption == "Output" else None
        found.append(Example(block.section, block.line, block.code, expected))
    return found


PAGE = blocks(DOC.read_text(encoding="utf-8"))
EXAMPLES = examples(PAGE)


def test_the_page_has_an_example_for_each_feature():
    sections = {e.section for e in EXAMPLES}
    for wanted in ("Objects: find or create", "Calling a socket", "Sending without waiting: delay and get",
                   "Pipeline", "Parallel", "Funnel", "Declaring sockets in code"):
        assert wanted in sections, f"docs/client.rst has no runnable example under {wanted!r}"
    assert all(e.expected for e in EXAMPLES), "every example shows its output"
    assert modules(PAGE), "the decorator example commits a processor module"


@pytest.fixture(scope="module", params=["sqlite"])  # (the client over PostgreSQL and Redis: tests/test_client.py)
def network(request, tmp_path_factory) -> Iterator[Network]:
    files = {"sample.py": SAMPLE.read_text(encoding="utf-8"), **modules(PAGE)}
    yield from open_network(request.param, tmp_path_factory.mktemp(f"docs-{request.param}"), request, files)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.section}@{e.line}" for e in EXAMPLES])
def test_example(network: Network, example: Example, tmp_path: Path):
    script = tmp_path / "example.py"
    script.write_text(example.code, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], env=network.process_env(), capture_output=True,
                            text=True, timeout=SCRIPT_TIMEOUT)
    where = f"docs/client.rst line {example.line} ({example.section})"
    assert result.returncode == 0, f"{where} failed:\n{result.stderr[-3000:]}\nagent log:\n{network.agent_log()}"
    assert result.stdout == example.expected, f"{where} printed:\n{result.stdout}\nexpected:\n{example.expected}"
