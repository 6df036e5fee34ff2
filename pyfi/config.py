"""Settings, resolved once: command-line flag > environment > ini file > default.

Nothing here runs at import time. ``resolve()`` is called by a front end (the
CLI's context object, an agent, a test) and the resulting ``Settings`` is
passed down explicitly.

The embedded default needs no servers: SQLite for the database, kombu's
SQLAlchemy transport over SQLite as broker, Celery's database result backend
over SQLite, and a SQLite-backed local pub/sub, all under ``$PYFI_HOME``.
"""
from __future__ import annotations

import configparser
import getpass
import io
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from pyfi.errors import ConfigError
from pyfi.private import private_dir, write_private

#: setting name -> (environment variable, ini section, ini key)
SOURCES = {
    "db": ("PYFI_DB", "database", "uri"),
    "broker": ("PYFI_BROKER", "broker", "uri"),
    "backend": ("PYFI_BACKEND", "backend", "uri"),
    "pubsub": ("PYFI_PUBSUB", "pubsub", "uri"),
    "user": ("PYFI_USER", "login", "user"),
    "password": ("PYFI_PASSWORD", "login", "password"),
    "git_allow": ("PYFI_GIT_ALLOW", "git", "allow"),
    "task_events": ("PYFI_TASK_EVENTS", "celery", "task_events"),
}

URI_SETTINGS = ("db", "broker", "backend", "pubsub")


@dataclass(frozen=True)
class Settings:
    home: Path
    ini: Path
    db: str
    broker: str
    backend: str
    pubsub: str
    user: str
    password: str | None = None
    git_allow: tuple[str, ...] = ()
    debug: bool = False
    task_events: bool = False  # workers send Celery task events (pyfi.messaging.task_events)
    origin: Mapping[str, str] = field(default_factory=dict)

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)

    @property
    def is_embedded(self) -> bool:
        """True when the database is SQLite (single-user embedded mode)."""
        return self.db.startswith("sqlite")


def default_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("PYFI_HOME") or Path.home() / ".pyfi").expanduser()


def embedded_defaults(home: Path) -> dict[str, str]:
    """The no-server configuration rooted at ``home``."""
    return {
        "db": f"sqlite:///{home}/pyfi.db",
        "broker": f"sqla+sqlite:///{home}/broker.db",
        "backend": f"db+sqlite:///{home}/results.db",
        "pubsub": f"sqlite:///{home}/pubsub.db",
        "user": _login_name(),
        "password": "",
        "git_allow": "",
        "task_events": "",
    }


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return "pyfi"


def read_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    if path.exists():
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            first_line = str(exc).splitlines()[0]
            raise ConfigError(f"cannot parse ini file {path}: {first_line}", "fix or remove the file") from exc
    return parser


def resolve(flags: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting once, recording where each value came from."""
    flags = {k: v for k, v in (flags or {}).items() if v not in (None, "")}
    env = os.environ if env is None else env
    home = default_home(env)
    named = flags.get("ini") or env.get("PYFI_INI")
    ini_path = Path(str(named or home / "pyfi.ini")).expanduser()
    if named and not ini_path.exists() and not flags.get("config"):  # `pyfi -c` is about to write it
        where = "-i path" if flags.get("ini") else "PYFI_INI variable"
        raise ConfigError(f"ini file {ini_path} does not exist", f"create it with `pyfi -c` or fix the {where}")
    ini = read_ini(ini_path)
    defaults = embedded_defaults(home)
    values: dict[str, str] = {}
    origin: dict[str, str] = {}
    for name, (env_var, section, key) in SOURCES.items():
        if name in flags:
            values[name], origin[name] = str(flags[name]), "flag"
        elif env.get(env_var):
            values[name], origin[name] = env[env_var], f"env {env_var}"
        elif ini.has_option(section, key) and ini.get(section, key).strip():
            values[name], origin[name] = ini.get(section, key).strip(), f"ini {ini_path}"
        else:
            values[name], origin[name] = defaults[name], "default"
    for name in URI_SETTINGS:
        check_uri(name, values[name])
    return Settings(
        home=home,
        ini=ini_path,
        db=values["db"],
        broker=values["broker"],
        backend=values["backend"],
        pubsub=values["pubsub"],
        user=values["user"],
        password=values["password"] or None,
        git_allow=tuple(p.strip() for p in values["git_allow"].replace("\n", ",").split(",") if p.strip()),
        debug=bool(flags.get("debug", False)),
        task_events=parse_switch("task_events", values["task_events"]),
        origin=origin,
    )


#: how a switch (``task_events``) may be written: on, off, or empty for off
SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False,
          "": False}


def parse_switch(name: str, text: str) -> bool:
    """A setting that is on or off; a value that is neither is refused, naming where it may be set."""
    value = SWITCH.get(text.strip().lower())
    if value is None:
        env_var, section, key = SOURCES[name]
        raise ConfigError(f"invalid {name} setting {text!r}: expected on or off",
                          f"set {env_var} or [{section}] {key} in the ini file to 1/true/yes/on or 0/false/no/off")
    return value


def check_uri(name: str, uri: str) -> None:
    """Reject a URI without a scheme early, with the setting's name in the message."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not scheme or not rest:
        env_var = SOURCES[name][0]
        raise ConfigError(
            f"invalid {name} URI {uri!r}: expected scheme://...",
            f"e.g. postgresql://user@host/db; set it with --{name}, {env_var} or the ini file",
        )


def write_ini(path: Path, values: Mapping[str, str]) -> None:
    """Write (or update) the ini file with the given settings."""
    parser = read_ini(path)
    for name, value in values.items():
        _env, section, key = SOURCES[name]
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, key, value)
    private_dir(path.parent)
    text = io.StringIO()
    parser.write(text)
    write_private(path, text.getvalue().encode("utf-8"))  # it may hold a password: 0600 from its first byte
