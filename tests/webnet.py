"""The dashboard's test network, shared by the browser tests (tests/test_web.py in Chromium, tests/test_web_firefox.py).

One network on the embedded default: two processors joined by a plug, two
users with passwords (one with ALL, one who may only look), and a
:class:`Site` that drives a browser over the pages.
"""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any, Iterator

from network import PYFI, Network, answers, build, free_port, stack_env, wait_for

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "_static" / "screenshots"
USER, PASSWORD = "ada", "correct horse battery"
READER, READER_PASSWORD = "reader", "only looking here"


class Site:
    """The network, the dashboard's address and the browser, shared by the module's tests."""

    def __init__(self, net: Network, names: dict[str, str], url: str, driver: Any) -> None:
        self.net, self.names, self.url, self.driver = net, names, url, driver
        self.console: list[dict] = []

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait_css(self, selector: str, timeout: float = 30, what: str | None = None) -> Any:
        return wait_for(lambda: (self.css(selector) or [None])[0], timeout, what=what or selector)

    def click(self, selector: str, timeout: float = 20) -> None:
        """Click the element, again if a redraw replaced it under the pointer."""
        from selenium.common.exceptions import StaleElementReferenceException

        def clicked() -> bool:
            try:
                self.wait_css(selector, timeout).click()
                return True
            except StaleElementReferenceException:
                return False

        wait_for(clicked, timeout, what=f"a click on {selector}")

    def text(self, selector: str) -> str:
        from selenium.common.exceptions import StaleElementReferenceException

        try:
            return " ".join(element.text for element in self.css(selector))
        except StaleElementReferenceException:
            return ""

    def attribute(self, selector: str, name: str) -> str | None:
        """An attribute of the first element matching, None while there is none (or a redraw replaced it)."""
        from selenium.common.exceptions import StaleElementReferenceException

        try:
            found = self.css(selector)
            return found[0].get_attribute(name) if found else None
        except StaleElementReferenceException:
            return None

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    def console_errors(self) -> list[str]:
        self.console += self.driver.get_log("browser")
        return [entry["message"] for entry in self.console if entry["level"] == "SEVERE"]


def make_network(home: Path) -> tuple[Network, dict[str, str]]:
    """Two processors on one queue, a plug from the first's socket to the second's, two users with passwords."""
    from pyfi.core.access import bootstrap_admin
    from pyfi.db import migrate
    from pyfi.db.engine import session_scope

    env = stack_env("embedded", home / "home", f"sqlite:///{home}/home/pyfi.db")
    (home / "home").mkdir()
    migrate.upgrade(env["PYFI_DB"])
    with session_scope(env["PYFI_DB"]) as session:
        bootstrap_admin(session, "admin")
    net = Network(env, home)
    names = build(net, {"shout": "upper", "boom": "boom"}, "loud")
    names["echo"] = net.name("echo")
    net.cli("add", "processor", "-n", "quiet", "-m", "sample", "-g", str(home / "repo-loud"))
    net.cli("add", "socket", "-n", names["echo"], "-q", names["queue"], "-pn", "quiet", "-t", "echo")
    net.cli("add", "plug", "-n", "shout-to-echo", "-q", names["queue"], "-s", names["shout"], "-t", names["echo"])
    net.cli("add", "user", "-n", USER, "-e", "ada@localhost", "-p", PASSWORD)
    net.cli("add", "privilege", "-u", USER, "-n", "ALL")
    net.cli("add", "user", "-n", READER, "-e", "reader@localhost", "-p", READER_PASSWORD)
    for right in ("READ", "LS_PROCESSORS", "LS_SOCKETS", "LS_QUEUES", "LS_PLUGS"):  # no nodes, agents, workers
        net.cli("add", "privilege", "-u", READER, "-n", right)
    return net, names


@contextlib.contextmanager
def dashboard(home: Path, node: str) -> Iterator[tuple[Network, dict[str, str], str]]:
    """The test network with an agent on ``node`` and ``pyfi web start`` answering: (network, names, its address)."""
    net, names = make_network(home)
    port = free_port()
    with open(home / "web.log", "ab") as log:
        server = subprocess.Popen(PYFI + ["web", "start", "-p", str(port)], env=net.env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        net.start_agent(node)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(url + "/login") or server.poll() is not None, 30, what="pyfi web start answering")
        assert server.poll() is None, (home / "web.log").read_text()[-2000:]
        yield net, names, url
    finally:
        server.terminate()
        server.wait(timeout=20)
        net.close()
