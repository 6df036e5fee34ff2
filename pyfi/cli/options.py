"""Option specs per object kind, shared by ``add`` and ``update``.

``add`` uses them as declared (required where the original pyfi documentation says so); ``update``
makes every option optional and selects the object by ``-n`` or ``--id``.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

import click

QUEUE_TYPES = click.Choice(["topic", "direct", "fanout"], case_sensitive=False)
PLUG_TYPES = click.Choice(["RESULT", "ERROR"], case_sensitive=False)
STRATEGIES = click.Choice(["BALANCED", "EFFICIENT"], case_sensitive=False)
#: what a user may request; pyfi.core.kinds.REQUESTABLE is the rule (importing it here would make
#: `--help` load SQLAlchemy), tests/test_cli_input.py checks the two agree
REQUESTABLE = ("ready", "running", "paused", "stopped", "removed")
#: seconds to wait (task run, listen): 0 or less would give up before anything could answer
POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)


def check_requested_status(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: an unknown status is answered with the requestable ones only.

    The statuses only agents report (starting, error) pass on to core, which says they cannot be requested.
    """
    from pyfi.enums import ProcessorStatus

    if value is None or value.lower() in ProcessorStatus.values():
        return value
    close = difflib.get_close_matches(value.lower(), REQUESTABLE, n=1)
    hint = f"did you mean {close[0]}?" if close else f"choose one of {', '.join(REQUESTABLE)}"
    raise click.BadParameter(f"unknown requested status {value!r} ({hint})", param=param)


class Commit(click.ParamType):
    """A git commit as the agent accepts it, checked when it is given rather than at the next deploy."""

    name = "COMMIT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in (None, ""):  # `update processor -c ''` unpins the commit
            return value
        try:
            from pyfi.agent.checkout import check_commit
        except ImportError:  # GitPython without a git binary: the agent checks it when it deploys
            return value
        from pyfi.errors import DeployError

        try:
            check_commit(value)
        except DeployError:
            self.fail(f"{value!r} is not a commit: give its sha, 4 to 64 hexadecimal digits", param, ctx)
        return value


@dataclass(frozen=True)
class Opt:
    decls: tuple[str, ...]
    field: str
    help: str = ""
    required: bool = False
    type: Any = None
    default: Any = None
    flag: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def for_add(self) -> Callable:
        kwargs: dict[str, Any] = {"help": self.help, "required": self.required, **self.extra}
        if self.flag:
            return click.option(*self.decls, self.field, is_flag=True, default=False, help=self.help)
        if self.type is not None:
            kwargs["type"] = self.type
        if self.default is not None:
            kwargs.update(default=self.default, show_default=True)
        return click.option(*self.decls, self.field, **kwargs)

    def for_update(self) -> Callable:
        if self.flag:
            long = self.decls[-1]
            return click.option(f"{long}/--no-{long.lstrip('-')}", self.field, default=None, help=self.help)
        kwargs: dict[str, Any] = {"help": self.help, "default": None, **self.extra}
        if self.type is not None:
            kwargs["type"] = self.type
        return click.option(*self.decls, self.field, **kwargs)


NAME = Opt(("-n", "--name"), "name", required=True)

SPECS: dict[str, list[Opt]] = {
    "queue": [
        NAME,
        Opt(("-t", "--type"), "type", type=QUEUE_TYPES, default="direct", required=True),
    ],
    "processor": [
        Opt(("-n", "--name"), "name", "Name of this processor", required=True),
        Opt(("-m", "--module"), "module", "Python module (e.g. some.module.path)", required=True),
        Opt(("-h", "--hostname"), "hostname", "Target server hostname"),
        Opt(("-w", "--workers"), "workers", "Number of worker tasks", type=click.IntRange(min=1)),
        Opt(("-r", "--retries"), "retries", "Number of retries to invoke this processor", type=click.IntRange(min=0)),
        Opt(("-g", "--gitrepo"), "gitrepo", "Git repo URI", required=True),
        Opt(("-c", "--commit"), "commit", "Git commit id for processor code (4 to 64 hexadecimal digits)",
            type=Commit()),
        Opt(("-rs", "--requested_status"), "requested_status", "The requested status for this processor",
            extra={"metavar": f"[{'|'.join(REQUESTABLE)}]", "callback": check_requested_status}),
        Opt(("-b", "--beat"), "beat", "Enable the beat scheduler: its sockets' -i/--cron schedules fire", flag=True),
        Opt(("-br", "--branch"), "branch", "Git branch to be used for checkouts"),
        Opt(("--requirements",), "requirements", "Extra pip requirements, comma separated"),
    ],
    "socket": [
        Opt(("-n", "--name"), "name", "Name of this socket", required=True),
        Opt(("-q", "--queue"), "queue", "Queue the socket consumes", required=True),
        Opt(("-pn", "--procname"), "processor", "Processor that runs the task", required=True),
        Opt(("-t", "--task"), "task", "Task function of the processor's module", required=True),
        Opt(("-i", "--interval"), "interval", "Run every N seconds (once per tick for the whole network, while its "
            "processor runs with -b/--beat)", type=click.IntRange(min=1)),
        Opt(("--cron",), "cron", 'Run on a cron schedule (five fields: minute hour day month weekday, in UTC), as '
            '-i/--interval does; update with --cron "" to remove the schedule'),
        Opt(("--wait",), "wait", "Join: run once every plugged argument has arrived", flag=True),
    ],
    "plug": [
        Opt(("-n", "--name"), "name", "Name of this plug", required=True),
        Opt(("-q", "--queue"), "queue", "Queue the plug sends through", required=True),
        Opt(("-s", "--source"), "source", "Source socket", required=True),
        Opt(("-t", "--target"), "target", "Target socket", required=True),
        Opt(("--type",), "type", "Forward results or errors", type=PLUG_TYPES, default="RESULT"),
        Opt(("--position",), "position", "Argument position at the target", type=click.IntRange(min=0), default=0),
    ],
    "node": [NAME, Opt(("-h", "--hostname"), "hostname", "Host name of the node")],
    "agent": [
        NAME,
        Opt(("--node",), "node", "Node the agent runs on", required=True),
        Opt(("-h", "--hostname"), "hostname", "Host name"),
        Opt(("-p", "--port"), "port", "Health port (1-65535)", type=click.IntRange(1, 65535)),
    ],
    "worker": [
        NAME,
        Opt(("-a", "--agent"), "agent", "Agent supervising the worker", required=True),
        Opt(("-p", "--processor"), "processor", "Processor the worker runs", required=True),
        Opt(("--concurrency",), "concurrency", "Worker processes", type=click.IntRange(min=1)),
    ],
    "scheduler": [
        NAME,
        Opt(("-s", "--strategy"), "strategy", "Placement strategy", type=STRATEGIES, default="BALANCED"),
        Opt(("-i", "--interval"), "interval", "Seconds between placement rounds", type=click.IntRange(min=1)),
    ],
    "deployment": [
        NAME,
        Opt(("-p", "--processor"), "processor", "Processor to place", required=True),
        Opt(("-h", "--hostname"), "hostname", "Name of the node to run it on", required=True),
        Opt(("--cpus",), "cpus", "Worker processes to run there (default 1)", type=click.IntRange(min=1)),
    ],
    "network": [NAME, Opt(("-d", "--description"), "description", "What the network is for")],
}

HELP = {
    "queue": "Add queue object to the database",
    "processor": "Add processor to the database",
    "socket": "Add socket (a task function bound to a queue) to the database",
    "plug": "Add plug (a wire from a socket's result to another socket) to the database",
    "node": "Add node to the database",
    "agent": "Add agent to the database (agents register themselves on start)",
    "worker": "Add worker to the database (agents register the ones they run)",
    "scheduler": "Add scheduler to the database",
    "deployment": "Add deployment (placement of a processor on a node, by hand: schedulers leave the processor alone) to "
                  "the database",
    "network": "Add network to the database",
}
