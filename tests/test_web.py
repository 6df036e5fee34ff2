"""The web dashboard in a real headless Chromium, against a real network (``pyfi web start`` and an agent).

One network on the embedded default (two processors joined by a plug, one
agent), one ``pyfi web start`` and one browser for the whole module; the tests
run in order, as a user would: log in through the form, watch the graph, pause
a processor, see a call sent from the CLI appear without a reload, open its
provenance, run a socket from the page, see a processor lost with its agent,
log out and come back as a user with fewer rights. The browser's console must
stay free of errors throughout. The pages' screenshots in the docs
(docs/_static/screenshots/) are taken here.

Skips when Chromium or its driver is missing, except under CI=true.
"""
from __future__ import annotations

import json
import os
import shutil
import urllib.request
from typing import Any, Iterator

import pytest
from network import wait_for
from webnet import READER, READER_PASSWORD, USER, PASSWORD, Site, dashboard

CHROMIUM = os.environ.get("PYFI_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PYFI_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")

pytestmark = pytest.mark.slow


def browser_or_skip() -> None:
    from conftest import require_service

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        require_service("Chromium", f"{' and '.join(missing)} not found (apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        require_service("Chromium", "selenium is not installed (pip install -e '.[test]')")


def start_chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    browser_or_skip()
    with dashboard(tmp_path_factory.mktemp("web"), "web-node") as (net, names, url):
        driver = start_chromium()
        try:
            yield Site(net, names, url, driver)
        finally:
            driver.quit()


@pytest.fixture(autouse=True)
def console_stays_clean(site: Site) -> Iterator[None]:
    yield
    assert site.console_errors() == [], "errors in the browser's console"


def processor_status(site: Site, name: str) -> str:
    rows = json.loads(site.net.cli("ls", "processors", "--json").stdout)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    return next(row["status"] for row in rows if row["name"] == name)


def box(name: str) -> str:
    return f'#graph g.processor[data-name="{name}"]'


def test_the_login_form_leads_to_the_graph_of_processors_with_their_statuses(site):
    site.open("/")
    wait_for(lambda: site.driver.current_url.endswith("/login"), 10, what="the redirect to the login page")
    assert site.wait_css("input#password").get_attribute("type") == "password"
    site.screenshot("login")
    site.wait_css("input#username").send_keys(USER)
    site.wait_css("input#password").send_keys(PASSWORD)
    site.click("button#login")
    wait_for(lambda: site.driver.current_url == site.url + "/", 15, what="the dashboard after login")
    assert "pyfi_token" not in site.driver.current_url
    cookie = site.driver.get_cookie("pyfi_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    for name in ("loud", "quiet"):
        wait_for(lambda name=name: site.text(box(name) + " text.name") == name, 15, what=f"{name}'s box named")
    site.net.wait_status("loud", "running", timeout=60)
    site.net.wait_status("quiet", "running", timeout=30)
    for name in ("loud", "quiet"):
        wait_for(lambda name=name: site.attribute(box(name), "data-status") == "running", 15,
                 what=f"{name} drawn as running")
    assert "shout-to-echo" in site.text("#graph g.plug") and site.names["queue"] in site.text("#graph g.queue")
    wait_for(lambda: "web-node" in site.text("#agents") and "running" in site.text("#agents"), 10, what="the agent, running")
    assert "web-node" in site.text("#nodes") and "running" in site.text("#nodes tbody td:nth-child(2)")


def test_pausing_a_processor_from_the_page_pauses_it(site):
    site.click(box("loud"))
    wait_for(lambda: site.text("#details-name") == "loud", 10, what="the details of loud")
    site.click("#action-pause")
    wait_for(lambda: processor_status(site, "loud") == "paused", 30, what="ls processors saying loud is paused")
    wait_for(lambda: site.attribute(box("loud"), "data-status") == "paused", 15, what="loud drawn paused")
    site.driver.set_window_size(420, 900)  # a phone's width: one column
    site.screenshot("network-narrow")
    site.driver.set_window_size(1280, 1000)
    site.click("#action-resume")
    wait_for(lambda: processor_status(site, "loud") == "running", 30, what="loud running again")


def test_a_call_sent_from_the_cli_appears_without_a_reload(site):
    site.open("/calls")
    site.wait_css("#live.on", 15, what="the live event stream open")
    site.driver.execute_script("window.notReloaded = true;")
    result = site.net.cli("task", "run", "-s", site.names["shout"], "-d", '"from the shell"', separate=True).stdout
    assert result.strip() == "FROM THE SHELL"
    row = '#calls tr[data-state="finished"] td:nth-child(2)'
    wait_for(lambda: site.names["shout"] in site.text(row), 20, what="the shell's call listed finished")
    wait_for(lambda: site.names["echo"] in site.text(row), 20, what="the call its plug made, listed finished")
    assert site.driver.execute_script("return window.notReloaded === true;"), "the page was reloaded"
    assert "from the shell" in site.text("#calls tbody")
    site.screenshot("calls")


def test_the_network_page_lists_a_new_call_live_too(site):
    site.open("/")
    site.wait_css("#live.on", 15, what="the network page's live event stream open")
    site.driver.execute_script("window.notReloaded = true;")
    call = site.net.cli("task", "run", "-s", site.names["shout"], "-d", '"on the graph"', "--no-wait").stdout.strip()
    wait_for(lambda: call in site.text('#newest tr[data-state="finished"]'), 30, what="the call listed on the network page")
    wait_for(lambda: "ON THE GRAPH" in site.text(f'#newest tr[data-id="{call}"]'), 10, what="its result previewed")
    assert site.driver.execute_script("return window.notReloaded === true;"), "the page was reloaded"
    site.open("/calls")  # (the next test starts from the calls list)


def test_a_calls_page_shows_its_result_events_and_provenance(site):
    listed = ("return [...document.querySelectorAll('#calls tbody tr')]"
              ".find((r) => r.cells[1].textContent === arguments[0] && r.textContent.includes('from the shell'))")
    call = wait_for(lambda: site.driver.execute_script(listed + "?.dataset.id", site.names["shout"]), 15,
                    what="a call of shout listed")
    site.click(f'#calls tr[data-id="{call}"] a')
    site.wait_css("#provenance svg g.tree-node.current", 15, what="the call's provenance drawn")
    wait_for(lambda: site.text("#outcome") == "FROM THE SHELL", 10, what="the result")
    wait_for(lambda: len(site.css("#provenance g.tree-node")) == 2, 15, what="the plug's call in the provenance")
    assert site.names["echo"] in site.text("#provenance") and '"from the shell"' in site.text("#arguments")
    events = site.driver.execute_script("return [...document.querySelectorAll('#timeline g.event')].map((e) => e.dataset.event)")
    assert {"received", "prerun", "postrun"} <= set(events)
    site.screenshot("call")
    site.click("#provenance a")  # the call the plug made, fed by this one
    wait_for(lambda: site.text("#outcome").strip('"') == "FROM THE SHELL", 15, what="the plug's call and its result")


def test_running_a_socket_from_the_page_shows_its_result(site):
    from selenium.webdriver.support.ui import Select

    site.open("/calls")
    site.wait_css(f'#run-socket option[value="{site.names["shout"]}"]')
    site.wait_css("#run-form[data-ready]")
    Select(site.wait_css("#run-socket")).select_by_value(site.names["shout"])
    arguments = site.wait_css("#run-args")
    arguments.clear()
    arguments.send_keys("[from the page]")
    site.click("#run-button")
    wait_for(lambda: "not JSON" in site.text("#run-result .error"), 5, what="the page refusing arguments that are not JSON")
    arguments.clear()
    arguments.send_keys('["from the page"]')
    site.click("#run-button")
    site.wait_css('#run-outcome[data-state="finished"]', 30, what="the page's call finished")
    assert site.text("#run-value") == "FROM THE PAGE"
    site.screenshot("run")


def test_a_failed_call_shows_its_error_on_the_page_and_beside_its_processor(site):
    from selenium.webdriver.support.ui import Select

    Select(site.wait_css("#run-socket")).select_by_value(site.names["boom"])
    arguments = site.wait_css("#run-args")
    arguments.clear()
    arguments.send_keys('["on purpose"]')
    site.click("#run-button")
    site.wait_css('#run-outcome[data-state="failed"]', 30, what="the page's failing call failed")
    assert "boom on purpose" in site.text("#run-value")
    site.open("/")
    site.click(box("loud"))
    wait_for(lambda: "1 failed · 3 finished" in site.text(box("loud") + " text.counts"), 15, what="loud's calls counted")
    wait_for(lambda: "boom on purpose" in site.text("#details"), 15, what="the error among loud's recent errors")
    site.screenshot("network")
    site.click(f'#details a.socket-link[href$="{site.names["boom"]}"]')  # its socket's calls, ready to run it again
    states = "return [...document.querySelectorAll('#calls tbody tr')].map((r) => [r.cells[1].textContent, r.dataset.state])"
    wait_for(lambda: site.driver.execute_script(states) == [[site.names["boom"], "failed"]], 15, what="the socket's one call")
    assert site.attribute("#run-socket", "value") == site.names["boom"]


def test_the_calls_filters_are_ls_calls_filters(site):
    site.open("/calls")
    site.wait_css("#calls tbody tr")
    site.wait_css("#filter-socket").send_keys(site.names["echo"])
    site.click("#filters button")
    listed = site.net.json("ls", "calls", "-s", site.names["echo"], "-r", "25")
    ids = [row["id"] for row in (listed["rows"] if isinstance(listed, dict) else listed)]
    shown = "return [...document.querySelectorAll('#calls tbody tr')].map((r) => r.dataset.id)"
    wait_for(lambda: site.driver.execute_script(shown) == ids, 10, what=f"the page listing what ls calls lists: {ids}")
    site.driver.find_element("css selector", "#filter-state option[value='failed']").click()
    site.click("#filters button")
    wait_for(lambda: site.driver.execute_script(shown) == [], 10, what="no failed call listed")


def test_a_processor_whose_agent_died_is_drawn_lost(site):
    site.open("/")
    site.net.agents["web-node"].kill()  # SIGKILL: the agent cannot say it stopped; its heartbeat goes stale
    site.net.agents["web-node"].wait(timeout=10)
    wait_for(lambda: site.attribute(box("loud"), "data-status") == "lost", 30, what="loud drawn lost")
    wait_for(lambda: "lost" in site.text("#agents") and "lost" in site.text("#nodes"), 10, what="its agent and node lost")

def test_logging_out_revokes_the_token_and_a_reader_sees_no_buttons(site):
    token = site.driver.get_cookie("pyfi_token")["value"]
    site.click("button#logout")
    wait_for(lambda: site.driver.current_url.endswith("/login"), 10, what="the login page after logout")
    assert site.driver.get_cookie("pyfi_token") is None
    request = urllib.request.Request(site.url + "/api/users/me", headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    site.wait_css("input#username").send_keys(READER)
    site.wait_css("input#password").send_keys(READER_PASSWORD)
    site.click("button#login")
    site.click(box("loud"))
    wait_for(lambda: site.text("#details-name") == "loud", 10, what="the details of loud, for a reader")
    assert site.css("#details .actions button") == []
    assert "nodes, agents, workers" in site.text("#status-line")
    site.open("/calls")
    site.wait_css("#run-form[data-ready]")
    assert not site.wait_css("#run-button").is_enabled()

