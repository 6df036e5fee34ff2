"""What an agent hands its workers: an environment without its own credentials, and credentials of their own.

- :func:`worker_env`: the agent's environment minus every pyfi setting of
  its own (PYFI_DB, PYFI_PASSWORD, PYFI_INI...) and libpq's ``PG*``
  variables, which may hold the database owner's login; the workers' pyfi
  settings are set anew (their database URL without a password), and they
  get a home of their own (the journal's place) with no ini file. Also the
  environment of the deploy's import check and of ``pip``.
- :func:`worker_credentials`: the processor's workers' database login on
  this node (a new password each time, on PostgreSQL:
  :mod:`pyfi.core.worker_logins`) and the processor's signing key, which
  reach the worker on its stdin (:mod:`pyfi.worker.credentials`).
"""
from __future__ import annotations

import os
from pathlib import Path

from pyfi.config import SOURCES, Settings
from pyfi.core import worker_logins
from pyfi.core.keys import processor_signer
from pyfi.core.login import login_url
from pyfi.db.engine import redact_password, session_scope
from pyfi.worker.credentials import Credentials

#: the agent's own settings, which its workers never inherit
SETTING_VARIABLES = frozenset({variable for variable, _section, _key in SOURCES.values()} | {"PYFI_INI", "PYFI_HOME"})


def worker_env(settings: Settings, home: Path) -> dict[str, str]:
    """The environment of workers whose home is ``home`` (see the module docstring)."""
    env = {name: value for name, value in os.environ.items()
           if name not in SETTING_VARIABLES and not name.startswith("PG")}
    env.update(PYFI_DB=redact_password(settings.db), PYFI_BROKER=settings.broker, PYFI_BACKEND=settings.backend,
               PYFI_PUBSUB=settings.pubsub, PYFI_HOME=str(home), PYFI_USER=settings.user)
    if settings.task_events:  # agent start --task-events, or the agent's own setting
        env["PYFI_TASK_EVENTS"] = "1"
    return env


def worker_credentials(db_url: str, processor_id: str, node: str) -> Credentials:
    """The database login and signing key of a worker started on ``node`` (``db_url``: the database owner's login)."""
    with session_scope(db_url) as session:
        signer = processor_signer(session, processor_id)
        if session.get_bind().dialect.name != "postgresql":  # SQLite: one file, one user
            return Credentials(db_url, signer.key_id, signer.private_key)
        role, password = worker_logins.issue(session, processor_id, node)
    return Credentials(login_url(db_url, role, password), signer.key_id, signer.private_key)
