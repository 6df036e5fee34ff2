"""Settings precedence: flag > environment > ini file > embedded default.

Checked on ``pyfi.config.resolve`` directly and through the CLI, where the
database actually used is told apart by the queue each one holds.
"""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pyfi.config import resolve
from pyfi.errors import ConfigError


def write_ini(path: Path, **sections: dict[str, str]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {v}" for k, v in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# --- resolve() ---------------------------------------------------------------

def test_embedded_default_lives_under_pyfi_home(tmp_path):
    settings = resolve({}, {"PYFI_HOME": str(tmp_path)})
    assert settings.db == f"sqlite:///{tmp_path}/pyfi.db"
    assert settings.broker == f"sqla+sqlite:///{tmp_path}/broker.db"
    assert settings.backend == f"db+sqlite:///{tmp_path}/results.db"
    assert settings.pubsub == f"sqlite:///{tmp_path}/pubsub.db"
    assert settings.ini == tmp_path / "pyfi.ini"
    assert settings.is_embedded
    assert {settings.origin[k] for k in ("db", "broker", "backend", "pubsub")} == {"default"}


def test_pyfi_home_defaults_to_dot_pyfi(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = resolve({}, {})
    assert settings.home == tmp_path / ".pyfi"
    assert settings.db == f"sqlite:///{tmp_path}/.pyfi/pyfi.db"


def test_default_ini_overrides_the_embedded_default(tmp_path):
    write_ini(tmp_path / "pyfi.ini", database={"uri": "postgresql://ini@h/db"}, broker={"uri": "redis://ini:6379/0"},
              backend={"uri": "redis://ini:6379/1"}, pubsub={"uri": "redis://ini:6379/2"}, login={"user": "inia"})
    settings = resolve({}, {"PYFI_HOME": str(tmp_path)})
    assert (settings.db, settings.broker, settings.backend, settings.pubsub, settings.user) == (
        "postgresql://ini@h/db", "redis://ini:6379/0", "redis://ini:6379/1", "redis://ini:6379/2", "inia")
    assert settings.origin["db"] == f"ini {tmp_path / 'pyfi.ini'}"


def test_env_overrides_ini_and_flag_overrides_env(tmp_path):
    write_ini(tmp_path / "pyfi.ini", database={"uri": "postgresql://ini@h/db"}, broker={"uri": "redis://ini/0"},
              backend={"uri": "redis://ini/1"}, pubsub={"uri": "redis://ini/2"})
    env = {"PYFI_HOME": str(tmp_path), "PYFI_DB": "postgresql://env@h/db", "PYFI_BROKER": "redis://env/0",
           "PYFI_BACKEND": "redis://env/1", "PYFI_PUBSUB": "redis://env/2", "PYFI_USER": "envuser"}
    from_env = resolve({}, env)
    assert (from_env.db, from_env.broker, from_env.backend, from_env.pubsub, from_env.user) == (
        "postgresql://env@h/db", "redis://env/0", "redis://env/1", "redis://env/2", "envuser")
    assert from_env.origin["db"] == "env PYFI_DB"
    from_flags = resolve({"db": "postgresql://flag@h/db", "broker": "redis://flag/0", "backend": "redis://flag/1"}, env)
    assert (from_flags.db, from_flags.broker, from_flags.backend) == (
        "postgresql://flag@h/db", "redis://flag/0", "redis://flag/1")
    assert from_flags.pubsub == "redis://env/2"  # no flag for it: env still wins over the ini
    assert from_flags.origin["db"] == "flag"


def test_empty_flags_and_env_values_fall_through(tmp_path):
    env = {"PYFI_HOME": str(tmp_path), "PYFI_DB": ""}
    assert resolve({"db": None, "broker": ""}, env).db == f"sqlite:///{tmp_path}/pyfi.db"


def test_ini_flag_beats_pyfi_ini_beats_home_ini(tmp_path):
    write_ini(tmp_path / "pyfi.ini", database={"uri": "postgresql://home@h/db"})
    env_ini = write_ini(tmp_path / "env.ini", database={"uri": "postgresql://envini@h/db"})
    flag_ini = write_ini(tmp_path / "flag.ini", database={"uri": "postgresql://flagini@h/db"})
    env = {"PYFI_HOME": str(tmp_path), "PYFI_INI": str(env_ini)}
    assert resolve({}, env).db == "postgresql://envini@h/db"
    assert resolve({"ini": str(flag_ini)}, env).db == "postgresql://flagini@h/db"
    assert resolve({"ini": str(flag_ini)}, {**env, "PYFI_DB": "postgresql://env@h/db"}).db == "postgresql://env@h/db"


def test_named_ini_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="missing.ini does not exist"):
        resolve({"ini": str(tmp_path / "missing.ini")}, {"PYFI_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="PYFI_INI"):
        resolve({}, {"PYFI_HOME": str(tmp_path), "PYFI_INI": str(tmp_path / "typo.ini")})


@pytest.mark.parametrize("setting,env_var", [("db", "PYFI_DB"), ("broker", "PYFI_BROKER"),
                                             ("backend", "PYFI_BACKEND"), ("pubsub", "PYFI_PUBSUB")])
def test_bad_uri_names_the_setting(tmp_path, setting, env_var):
    with pytest.raises(ConfigError) as info:
        resolve({}, {"PYFI_HOME": str(tmp_path), env_var: "nonsense"})
    assert f"invalid {setting} URI 'nonsense'" in str(info.value)
    assert env_var in str(info.value)
    assert info.value.exit_code == 2


def test_unparseable_ini_is_a_config_error(tmp_path):
    (tmp_path / "pyfi.ini").write_text("this is not = an ini\n[broken\n")
    with pytest.raises(ConfigError, match="cannot parse ini file"):
        resolve({}, {"PYFI_HOME": str(tmp_path)})


# --- through the CLI ---------------------------------------------------------

@pytest.fixture
def three_dbs(home: Path, run_cli, monkeypatch) -> dict[str, str]:
    """Three migrated SQLite databases, each holding one queue named after it."""
    from pyfi.core import schema

    urls = {}
    for label in ("flag", "env", "ini"):
        url = f"sqlite:///{home}/{label}.db"
        schema.init(url, "admin")
        assert run_cli("-d", url, "add", "queue", "-n", f"q_{label}").exit_code == 0
        urls[label] = url
    return urls


def queues(run_cli, *args: str) -> set[str]:
    result = run_cli(*args, "ls", "queues", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"] for row in json.loads(result.stdout)["rows"]}


def test_cli_database_precedence(three_dbs, home, run_cli, monkeypatch):
    ini = write_ini(home / "pyfi.ini", database={"uri": three_dbs["ini"]})
    assert queues(run_cli) == {"q_ini"}
    monkeypatch.setenv("PYFI_DB", three_dbs["env"])
    assert queues(run_cli) == {"q_env"}
    assert queues(run_cli, "-d", three_dbs["flag"]) == {"q_flag"}
    assert queues(run_cli, "--db", three_dbs["flag"], "-i", str(ini)) == {"q_flag"}
    monkeypatch.delenv("PYFI_DB")
    other = write_ini(home / "other.ini", database={"uri": three_dbs["flag"]})
    assert queues(run_cli, "-i", str(other)) == {"q_flag"}
    assert queues(run_cli, "--ini", str(other)) == {"q_flag"}
    monkeypatch.setenv("PYFI_DB", three_dbs["env"])
    fresh = f"sqlite:///{home}/fresh.db"
    who = run_cli("-d", fresh, "whoami")
    assert who.exit_code == 1 and f"no pyfi database at {home}/fresh.db" in who.stderr, who.stderr
    assert not (home / "fresh.db").exists(), "a command that reads the database created it"
    assert run_cli("-d", three_dbs["flag"], "whoami").stdout.startswith("Database user: admin")


def test_cli_embedded_default_needs_no_configuration(home, run_cli):
    assert run_cli("db", "init").exit_code == 0
    assert (home / "pyfi.db").exists()
    assert run_cli("add", "queue", "-n", "q1").exit_code == 0
    assert queues(run_cli) == {"q1"}


def test_cli_login_user_precedence(home, run_cli, monkeypatch):
    url = f"sqlite:///{home}/pyfi.db"
    monkeypatch.setenv("PYFI_DB", url)
    write_ini(home / "pyfi.ini", login={"user": "inia"})
    monkeypatch.setenv("PYFI_USER", "enva")
    assert run_cli("db", "init").exit_code == 0
    who = json.loads(run_cli("whoami", "--json").stdout)
    assert who["pyfi_user"] == "enva" and who["rights"] == ["ALL"]
    monkeypatch.delenv("PYFI_USER")
    who = json.loads(run_cli("whoami", "--json").stdout)
    assert who["pyfi_user"] == "inia" and who["rights"] == []


def test_config_flag_writes_the_ini_and_later_commands_use_it(home, run_cli, monkeypatch):
    monkeypatch.delenv("PYFI_USER")
    db = f"sqlite:///{home}/configured.db"
    # Database URI, broker, backend, pubsub (defaults kept), login user
    result = run_cli("-c", input=f"{db}\n\n\nredis://localhost:6379/3\nbob\n")
    assert result.exit_code == 0, result.output
    assert f"[sqla+sqlite:///{home}/broker.db]" in result.output  # defaults are shown
    ini = home / "pyfi.ini"
    assert f"Wrote {ini}" in result.output
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    settings = resolve({}, {"PYFI_HOME": str(home)})
    assert (settings.db, settings.broker, settings.pubsub, settings.user) == (
        db, f"sqla+sqlite:///{home}/broker.db", "redis://localhost:6379/3", "bob")
    assert run_cli("db", "init").exit_code == 0
    assert Path(db.removeprefix("sqlite:///")).exists() and not (home / "pyfi.db").exists()
    assert json.loads(run_cli("whoami", "--json").stdout)["pyfi_user"] == "bob"
    # A second run shows the written values as defaults; Enter keeps them.
    again = run_cli("-c", input="\n\n\n\n\n")
    assert again.exit_code == 0 and f"[{db}]" in again.output and "[bob]" in again.output
    assert resolve({}, {"PYFI_HOME": str(home)}).pubsub == "redis://localhost:6379/3"


def test_config_flag_creates_a_named_ini(home, run_cli):
    target = home.parent / "elsewhere" / "my.ini"
    result = run_cli("-i", str(target), "-c", input="sqlite:///x.db\n\n\n\nann\n")
    assert result.exit_code == 0, result.output
    assert resolve({"ini": str(target)}, {"PYFI_HOME": str(home)}).db == "sqlite:///x.db"


def test_config_flag_rejects_a_bad_uri_and_writes_nothing(home, run_cli):
    result = run_cli("-c", input="nonsense\n")
    assert result.exit_code == 2
    assert "Error: invalid db URI 'nonsense'" in result.output
    assert not (home / "pyfi.ini").exists()


@pytest.mark.parametrize("args,needle", [
    (("-d", "nonsense"), "invalid db URI 'nonsense'"),
    (("--broker", "nonsense"), "invalid broker URI 'nonsense'"),
    (("--backend", "nonsense"), "invalid backend URI 'nonsense'"),
])
def test_cli_bad_uri_is_one_line_and_exit_2(home, run_cli, args, needle):
    result = run_cli(*args, "whoami")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0]
    assert not home.exists()


def test_cli_bad_uri_from_env_or_ini_names_the_setting(home, run_cli, monkeypatch):
    write_ini(home / "pyfi.ini", pubsub={"uri": "localhost"})
    result = run_cli("whoami")
    assert result.exit_code == 2 and "invalid pubsub URI 'localhost'" in result.stderr
    monkeypatch.setenv("PYFI_BROKER", "nohost")
    assert "invalid broker URI 'nohost'" in run_cli("whoami").stderr


def test_cli_missing_ini_is_an_error(home, run_cli, tmp_path):
    result = run_cli("-i", str(tmp_path / "missing.ini"), "whoami")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.ini does not exist" in lines[0] and "pyfi -c" in lines[0]
