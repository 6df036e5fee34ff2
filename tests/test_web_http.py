"""The dashboard's server over plain HTTP, on each database: login form, cookie, pages, logout, its own reads.

What a browser is not needed for: the cookie's flags, the redirects, the
security headers, the rights behind ``/web/me``, ``/web/counts`` and
``/web/previews``. (tests/test_web.py drives the pages in Chromium.)
"""
from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from apiserver import NOBODY, PASSWORD, ROOT, add_users, make_database, serving


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request, tmp_path_factory) -> Iterator[tuple[str, object]]:
    from conftest import drop_user_roles

    from pyfi.web import create_web_app

    home = tmp_path_factory.mktemp(f"web-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        for var in [v for v in os.environ if v.startswith("PYFI_") and not v.startswith("PYFI_TEST")]:
            patch.delenv(var)
        patch.setenv("PYFI_HOME", str(home))
        patch.setenv("PYFI_USER", "admin")
        url = make_database(request, request.param, home)
        patch.setenv("PYFI_DB", url)
        try:
            add_users(url)
            app = create_web_app({"db": url})
            with serving(app) as base:
                yield base, app
        finally:
            if request.param != "sqlite":
                drop_user_roles(url)


def browser(base: str) -> httpx.Client:
    """A client that keeps cookies and does not follow redirects, so they can be checked."""
    return httpx.Client(base_url=base, timeout=30, follow_redirects=False)


def log_in(http: httpx.Client, user: str = ROOT, password: str = PASSWORD) -> httpx.Response:
    return http.post("/login", data={"username": user, "password": password})


def test_the_form_sets_an_http_only_strict_cookie_and_never_puts_the_token_in_a_url(site):
    base, _app = site
    with browser(base) as http:
        assert http.get("/").headers["location"] == "/login"
        form = http.get("/login")
        wrong = log_in(http, ROOT, "wrong")
        right = log_in(http)
        page = http.get("/")
    assert form.status_code == 200 and 'type="password"' in form.text and 'name="username"' in form.text
    assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text and "set-cookie" not in wrong.headers
    assert right.status_code == 303 and right.headers["location"] == "/"
    cookie = right.headers["set-cookie"]
    token = http.cookies["pyfi_token"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert token not in right.headers["location"] and token not in page.text
    assert page.status_code == 200 and ROOT in page.text
    assert "Secure" not in cookie
    with browser(base) as proxied:  # behind a TLS proxy on this host
        secure = proxied.post("/login", data={"username": ROOT, "password": PASSWORD},
                              headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 303 and "Secure" in secure.headers["set-cookie"]


def test_pages_carry_a_strict_content_security_policy_and_an_icon(site):
    base, _app = site
    with browser(base) as http:
        log_in(http)
        pages = [http.get(path) for path in ("/", "/calls", "/calls/0123456789abcdef", "/login")]
        icon, script = http.get("/favicon.ico"), http.get("/static/pyfi.js")
        hostile = http.get('/calls/"><img src=x onerror=alert(1)>')
        api = http.get("/api/openapi.json")
    for page in pages:
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, page.url
        assert "<script>" not in page.text  # no inline script: the policy would refuse it
    assert [p.status_code for p in pages[:3]] == [200, 200, 200] and pages[3].status_code == 303
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert api.status_code == 200 and "content-security-policy" not in api.headers  # the API's docs are left alone
    assert hostile.status_code == 200 and "<img" not in hostile.text and "&#34;&gt;&lt;img" in hostile.text


def test_the_cookie_acts_for_the_api_and_a_change_needs_the_pages_header(site):
    base, _app = site
    with browser(base) as http:
        log_in(http)
        read = http.get("/api/users/me")
        forged = http.post("/api/queues", json={"name": "q-forged"})
        made = http.post("/api/queues", json={"name": "q-from-page"}, headers={"X-Pyfi-Web": "1"})
    assert read.status_code == 200 and read.json()["name"] == ROOT
    assert forged.status_code == 401 and "X-Pyfi-Web" in forged.json()["detail"]
    assert made.status_code == 201


def test_the_pages_reads_follow_the_users_rights_roles_included(site):
    base, _app = site
    with browser(base) as root, browser(base) as nobody:
        log_in(root)
        log_in(nobody, NOBODY)
        assert nobody.get("/web/me").json() == {"name": NOBODY, "rights": [], "reads": {
            "processors": False, "sockets": False, "queues": False, "plugs": False, "nodes": False, "agents": False,
            "workers": False, "calls": False}}
        headers = {"X-Pyfi-Web": "1"}
        assert root.post("/api/roles", json={"name": "runners"}, headers=headers).status_code == 201
        assert root.post("/api/privileges", json={"right": "RUN_TASK", "role": "runners"}, headers=headers).status_code == 201
        assert root.post("/api/privileges", json={"right": "LS_SOCKETS", "role": "runners"}, headers=headers).status_code == 201
        assert root.post("/api/roles/runners/users", json={"user": NOBODY}, headers=headers).status_code in (200, 201, 204)
        me = nobody.get("/web/me").json()
        counts_denied, counts = nobody.get("/web/counts"), root.get("/web/counts")
        previews = root.get("/web/previews", params={"ids": "nope-0000,also-not-a-call"})
        statuses, no_statuses = root.get("/web/statuses"), nobody.get("/web/statuses")
    assert me["rights"] == ["LS_SOCKETS", "RUN_TASK"] and me["reads"]["sockets"] and not me["reads"]["calls"]
    assert counts_denied.status_code == 403 and "READ" in counts_denied.json()["detail"]
    assert counts.status_code == 200 and counts.json() == {"sockets": {}}
    assert previews.status_code == 200 and previews.json() == {"calls": {}}  # only calls the database knows are read
    assert statuses.json() == {"processors": {}, "agents": {}, "workers": {}} and no_statuses.json() == {}


def test_logging_out_revokes_the_token_and_clears_the_cookie(site):
    base, _app = site
    with browser(base) as http:
        log_in(http)
        token = http.cookies["pyfi_token"]
        out = http.post("/logout")
        after = http.get("/")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert 'pyfi_token=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    assert after.headers["location"] == "/login"
    assert httpx.get(f"{base}/api/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_repeated_failures_are_slowed_as_at_the_apis_login(site):
    from pyfi.api.throttle import LIMIT, LoginThrottle

    base, app = site
    app.state.throttle = LoginThrottle()  # (the first test's failure counts against this address too)
    try:
        with browser(base) as http:
            failures = [log_in(http, NOBODY, "guess").status_code for _ in range(LIMIT)]
            slowed = log_in(http, NOBODY, PASSWORD)
        assert failures == [401] * LIMIT
        assert slowed.status_code == 429 and "Too many failed logins" in slowed.text and int(slowed.headers["retry-after"]) > 0
    finally:
        app.state.throttle = LoginThrottle()  # (the module's other tests log in from the same address)


def test_every_page_script_and_style_goes_into_the_wheel():
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    root = Path(__file__).resolve().parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pyfi.web"]
    files = [p.relative_to(root / "pyfi" / "web").as_posix() for p in (root / "pyfi" / "web").rglob("*")
             if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert files and not [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
