"""The right each ``pyfi`` command needs, generated from the code that checks it.

Object commands come from the kind registry (``pyfi.core.kinds.KINDS``),
``proc`` actions from ``pyfi.core.processors.ACTIONS``; the rest name the
right their core function requires. ``docs/access.rst`` carries this table
(regenerate it with ``python -m pyfi.core.rights_table``), and a test checks
both that the docs match and that each command really asks for its right.
"""
from __future__ import annotations

from pyfi.core.kinds import KINDS
from pyfi.core.processors import ACTIONS
from pyfi.enums import Right

NOT_OWNER = {"update": Right.UPDATE, "delete": Right.DELETE}
#: commands pyfi checks outside the kind registry and proc actions: command -> right (None: no right)
OTHER: dict[str, Right | None] = {
    "add user": KINDS["user"].add,
    "update user": KINDS["user"].update,
    "delete user": KINDS["user"].delete,
    "add role": KINDS["role"].add,
    "add role -u USER": Right.UPDATE_USER,
    "delete role": KINDS["role"].delete,
    "delete role -u USER": Right.UPDATE_USER,
    "add privilege": Right.ADD_PRIVILEGE,
    "delete privilege": Right.DELETE_PRIVILEGE,
    "ls tasks": Right.READ,
    "ls calls": Right.READ,
    "ls call": Right.READ,
    "task run": Right.RUN_TASK,
    "task cancel": Right.CANCEL_TASK,
    "agent start": Right.START_AGENT,
    "scheduler add": Right.UPDATE_SCHEDULER,
    "scheduler remove": Right.UPDATE_SCHEDULER,
    "scheduler start": Right.UPDATE_SCHEDULER,
    "node cordon": Right.UPDATE_NODE,
    "node uncordon": Right.UPDATE_NODE,
    "node drain": Right.UPDATE_NODE,
    "ls placements": Right.READ,
    "db init": None,
    "db migrate": Right.DB_INIT,
    "db drop": Right.DB_DROP,
    "db rebuild": Right.DB_DROP,
    "db json": Right.READ,
    "whoami": None,
}
#: commands among OTHER that change an object: another user's needs UPDATE too
CHANGES = {"scheduler add", "scheduler remove", "node cordon", "node uncordon", "node drain"}
NOTES = {
    "db init": "none: it creates the schema and makes the configured user its administrator (ALL)",
    "whoami": "none",
}


def _kind_rows() -> list[tuple[str, str]]:
    rows = []
    for kind in KINDS.values():
        if kind.name not in ("user", "role"):
            rows += [(f"add {kind.name}", kind.add.value),
                     (f"update {kind.name}", f"{kind.update.value}; another user's: also {NOT_OWNER['update'].value}"),
                     (f"delete {kind.name}", f"{kind.delete.value}; another user's: also {NOT_OWNER['delete'].value}")]
        rows += [(f"ls {kind.plural}", kind.ls.value), (f"ls {kind.name}", kind.read.value)]
    return rows


def _other(command: str, right: Right | None) -> str:
    if right is None:
        return NOTES[command]
    return f"{right.value}; another user's: also {NOT_OWNER['update'].value}" if command in CHANGES else right.value


def command_rights() -> list[tuple[str, str]]:
    """(command, right needed) for every command that touches the database, sorted by command."""
    rows = _kind_rows()
    rows += [(f"proc {action}", f"{right.value}; another user's: also {NOT_OWNER['update'].value}")
             for action, (right, _status) in ACTIONS.items()]
    rows += [(command, _other(command, right)) for command, right in OTHER.items()]
    return sorted(rows)


def render_rst() -> str:
    """The table as reStructuredText (a list-table)."""
    lines = [".. list-table:: Right needed per command (ALL grants every right)", "   :header-rows: 1", "",
             "   * - Command", "     - Right"]
    for command, right in command_rights():
        lines += [f"   * - ``pyfi {command}``", f"     - {right}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render_rst(), end="")
