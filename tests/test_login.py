"""``pyfi login`` / ``pyfi logout``: later commands act as the logged-in user, by a token kept in the ini file."""
from __future__ import annotations

import stat
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from pyfi.testing import wait_for

PASSWORD = "s3cret-enough"


@pytest.fixture
def dana(db_url, run_cli) -> str:
    """A pyfi user with a password and no rights (unique: on PostgreSQL it is a cluster-wide role)."""
    name = f"dana_{uuid.uuid4().hex[:6]}"
    assert run_cli("add", "user", "-n", name, "-e", "d@example.org", "-p", PASSWORD).exit_code == 0
    return name


def test_login_keeps_a_token_and_never_the_password_and_commands_act_as_that_user(home, dana, run_cli):
    logged_in = run_cli("login", "-u", dana, input=PASSWORD + "\n")
    ini = home / "pyfi.ini"
    assert logged_in.exit_code == 0 and f"Logged in as {dana}" in logged_in.output, logged_in.output
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    content = ini.read_text()
    assert f"user = {dana}" in content and "token = pyfi_" in content and PASSWORD not in content
    acting = run_cli("ls", "queues")  # PYFI_USER says admin: the token's user acts
    assert acting.exit_code == 1 and f"user '{dana}' lacks the right LS_QUEUES" in acting.output
    token_line = next(line for line in content.splitlines() if line.startswith("token"))
    logged_out = run_cli("logout")
    assert logged_out.exit_code == 0 and "Logged out" in logged_out.output
    assert "token" not in ini.read_text() and stat.S_IMODE(ini.stat().st_mode) == 0o600
    assert run_cli("ls", "queues").exit_code == 0  # as admin again
    ini.write_text(ini.read_text().replace("[login]", f"[login]\n{token_line}"))
    refused = run_cli("ls", "queues")
    assert refused.exit_code == 1 and "the token is unknown or revoked" in refused.output and "pyfi login" in refused.output


def test_a_wrong_password_stores_nothing(home, dana, run_cli):
    result = run_cli("login", "-u", dana, input="not-it\n")
    assert result.exit_code == 1 and "wrong user name or password" in result.output
    assert not (home / "pyfi.ini").exists() or "token" not in (home / "pyfi.ini").read_text()


def test_an_expired_login_says_to_log_in_again(home, dana, run_cli):
    assert run_cli("login", "-u", dana, "--hours", "0.0000003", input=PASSWORD + "\n").exit_code == 0  # ~1 ms
    expired = wait_for(lambda: (r := run_cli("ls", "queues")) and "expired" in r.output and r, 10, "the token to expire")
    assert expired.exit_code == 1 and "the token has expired (log in again: pyfi login" in expired.output


def test_a_user_revokes_their_own_tokens(home, dana, run_cli):
    assert run_cli("login", "-u", dana, input=PASSWORD + "\n").exit_code == 0
    revoked = run_cli("update", "user", "-n", dana, "--revoke-tokens")
    assert revoked.exit_code == 0 and f"Revoked 1 token(s) of user '{dana}'" in revoked.output
    refused = run_cli("ls", "queues")
    assert refused.exit_code == 1 and "unknown or revoked" in refused.output


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_a_users_own_database_login_cannot_read_the_tokens(db_url, dana, run_cli):
    assert run_cli("login", "-u", dana, input=PASSWORD + "\n").exit_code == 0
    own = make_url(db_url).set(username=dana, password=PASSWORD)
    engine = create_engine(own)
    try:
        with engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT digest FROM api_tokens"))
    finally:
        engine.dispose()
