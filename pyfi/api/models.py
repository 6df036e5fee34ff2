"""The API's request and response bodies for the network's objects, as typed pydantic models.

Request fields are named like the CLI's options (``pyfi add socket -q QUEUE
-pn PROCESSOR -t TASK`` is ``{"queue", "processor", "task"}``); an update
takes the same fields, all optional, plus ``rename``. Limits are the
database's (a name holds 200 characters, a number fits 32 bits), so a value
that cannot be stored is a 422 naming its field, not a database error.
Responses name related objects by name. Times are UTC.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Path
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool,
                      StringConstraints, model_validator)
from pydantic import AliasPath as At

from pyfi.core.kinds import MODULE_RE
from pyfi.core.names import FUNCTION_RE, MAX_NAME, forbidden_ranges

#: no NUL: PostgreSQL cannot store it in text
NO_NUL = r"^[^\x00]*$"
INT32 = 2**31 - 1


def text(longest: int, shortest: int = 0) -> Any:
    return Annotated[str, StringConstraints(min_length=shortest, max_length=longest, pattern=NO_NUL)]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment


#: a time as the database keeps it (naive UTC), sent with its zone: RFC 3339, as OpenAPI's date-time says
UtcTime = Annotated[dt.datetime, AfterValidator(_utc)]
def _name_pattern(also: str = "") -> str:
    """A name as ``pyfi.core.names.check_name`` takes it: no control or invisible character, no surrounding space."""
    banned = also + _banned()
    return f"^[^ {banned}]([^{banned}]*[^ {banned}])?$"


def _banned() -> str:
    """The characters no name may hold, as a regular expression's character class body."""
    return "".join(_escaped(low) + (f"-{_escaped(high)}" if high > low else "") for low, high in forbidden_ranges())


def _escaped(point: int) -> str:
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=_name_pattern())]
#: a processor's name holds no '.' (its room is <queue>.<processor>)
ProcessorName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME, pattern=_name_pattern("."))]


def _number(value: Any) -> Any:
    """Only a JSON number: as JSON Schema's integer, 2.0 is taken as 2 and 2.5 refused; true and "2" are refused."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError("give a whole number")
    return value


Count = Annotated[int, Field(ge=1, le=INT32), BeforeValidator(_number)]  # (constraints first: the schema says them)
Position = Annotated[int, Field(ge=0, le=INT32), BeforeValidator(_number)]


def printable(longest: int, blank: bool = True) -> Any:
    """Text as ``check_processor`` takes it: no control or invisible character; more than spaces unless ``blank``."""
    banned = _banned()
    pattern = f"^[^{banned}]*$" if blank else f"^ *[^ {banned}][^{banned}]*$"
    return Annotated[str, StringConstraints(max_length=longest, pattern=pattern)]


#: the object a route names in its path
NamePath = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL, description="the object's name")]
Requestable = Literal["ready", "running", "paused", "stopped", "removed"]
Commit = Annotated[str, StringConstraints(pattern=r"^([0-9A-Fa-f]{4,64})?$")]


def _cron_pattern() -> str:
    """Five cron fields in their ranges (names of months and weekdays too), or an @-schedule; empty removes it.

    A subset of what croniter takes (tests/test_api.py checks that croniter takes all of it), so
    that every expression the schema admits is one ``add socket --cron`` takes.
    """
    step = r"(0?[1-9]|[1-5][0-9])"
    months = r"(0?[1-9]|1[0-2]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
    fields = (r"[0-5]?[0-9]", r"([01]?[0-9]|2[0-3])", r"(0?[1-9]|[12][0-9]|3[01])", months,
              r"([0-6]|sun|mon|tue|wed|thu|fri|sat)")
    items = [rf"(\*|{n}(-{n})?)(/{step})?" for n in fields]
    return "^(" + " ".join(rf"{i}(,{i})*" for i in items) + "|@(yearly|annually|monthly|weekly|daily|hourly))?$"


Cron = Annotated[str, StringConstraints(max_length=120, pattern=_cron_pattern())]
#: a dotted Python module path and a public function's name, as ``add processor -m`` and ``add socket -t`` take them
Module = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=MODULE_RE.pattern)]
Function = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=FUNCTION_RE.pattern)]


def _names(objects: Any) -> list[str]:
    return sorted(o if isinstance(o, str) else o.name for o in objects)


Names = Annotated[list[str], BeforeValidator(_names)]

T = TypeVar("T")


class Shown:
    """A database row with some attributes as ``ls`` shows them (a status judged by its heartbeat, say)."""

    def __init__(self, row: Any, **shown: Any) -> None:
        self._row, self._shown = row, shown

    def __getattr__(self, name: str) -> Any:
        return self._shown[name] if name in self._shown else getattr(self._row, name)


def _is_row(data: Any) -> bool:
    return hasattr(data, "__table__")


class Paged(BaseModel, Generic[T]):
    """One page of a listing: ``total`` objects in all."""

    page: int
    rows: int
    total: int
    items: list[T]


class Object(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    owner: str | None = None
    created: UtcTime
    lastupdated: UtcTime


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Renaming(Strict):
    rename: Name | None = Field(None, description="a new name")


class QueueIn(Strict):
    name: Name
    type: Literal["topic", "direct", "fanout"] = "direct"


class QueueUpdate(Renaming):
    type: Literal["topic", "direct", "fanout"] | None = None


class QueueOut(Object):
    type: str
    durable: bool
    message_ttl: int | None = None
    expires: int | None = None
    description: str | None = None


class ProcessorFields(Strict):
    hostname: printable(200) | None = Field(None, description="target server hostname")
    workers: Count | None = Field(None, description="number of worker processes")
    retries: Position | None = None
    commit: Commit | None = Field(None, description="git commit (4 to 64 hexadecimal digits); empty unpins it")
    requested_status: Requestable | None = None
    branch: printable(200) | None = None
    requirements: printable(4000) | None = Field(None, description="extra pip requirements, comma separated")


class ProcessorIn(ProcessorFields):
    name: ProcessorName
    module: Module = Field(description="Python module, e.g. some.module.path")
    gitrepo: printable(2000, blank=False) = Field(description="git repository URI")
    beat: StrictBool = False


class ProcessorUpdate(ProcessorFields, Renaming):
    rename: ProcessorName | None = Field(None, description="a new name")
    module: Module | None = None
    gitrepo: printable(2000, blank=False) | None = None
    beat: StrictBool | None = None


class ProcessorOut(Object):
    module: str
    hostname: str | None = None
    workers: int
    retries: int
    gitrepo: str
    branch: str | None = None
    commit: str | None = None
    beat: bool
    requirements: str | None = None
    requested_status: str
    status: str
    error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def as_shown(cls, data: Any) -> Any:
        """Lost when no live agent runs it, as ``ls processors`` shows."""
        if not _is_row(data):
            return data
        from pyfi.core.liveness import shown_processor_status

        status, error = shown_processor_status(data)
        return Shown(data, status=status, error=error)


class SocketFields(Strict):
    #: one of interval and cron, never both (a null is neither, as an option not given)
    model_config = ConfigDict(json_schema_extra={"not": {"required": ["interval", "cron"]}})

    interval: Count = Field(None, description="run every N seconds (while its processor has beat)")  # type: ignore[assignment]
    cron: Cron = Field(None, description="run on a cron schedule (UTC); empty removes the schedule")  # type: ignore[assignment]


class SocketIn(SocketFields):
    name: Name
    queue: Name
    processor: Name
    task: Function = Field(description="the task function of the processor's module")
    wait: StrictBool = False


class SocketUpdate(SocketFields, Renaming):
    queue: Name | None = None
    processor: Name | None = None
    task: Function | None = None
    wait: StrictBool | None = None


class SocketOut(Object):
    queue: str = Field(validation_alias=At("queue", "name"))
    processor: str = Field(validation_alias=At("processor", "name"))
    task: str = Field(validation_alias=At("task", "name"))
    interval: int | None = None
    cron: str | None = None
    wait: bool


class PlugIn(Strict):
    name: Name
    queue: Name
    source: Name
    target: Name
    type: Literal["RESULT", "ERROR"] = "RESULT"
    position: Position = 0


class PlugUpdate(Renaming):
    queue: Name | None = None
    source: Name | None = None
    target: Name | None = None
    type: Literal["RESULT", "ERROR"] | None = None
    position: Position | None = None


class PlugOut(Object):
    queue: str = Field(validation_alias=At("queue", "name"))
    source: str = Field(validation_alias=At("source", "name"))
    target: str = Field(validation_alias=At("target", "name"))
    type: str
    position: int


class NodeIn(Strict):
    name: Name
    hostname: text(200) | None = None


class NodeUpdate(Renaming):
    hostname: text(200) | None = None


class NodeOut(Object):
    hostname: str | None = None
    cpus: int | None = None
    load: float | None = None
    memory: int | None = None
    disk: int | None = None
    cordoned: bool
    draining: bool


class AgentIn(Strict):
    name: Name
    node: Name
    hostname: text(200) | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None


class AgentUpdate(Renaming):
    node: Name | None = None
    hostname: text(200) | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None


class AgentOut(Object):
    node: str = Field(validation_alias=At("node", "name"))
    hostname: str | None = None
    pid: int | None = None
    port: int | None = None
    status: str

    @model_validator(mode="before")
    @classmethod
    def as_shown(cls, data: Any) -> Any:
        """Lost once its heartbeat is stale, as ``ls agents`` shows."""
        from pyfi.core.liveness import effective_status

        return Shown(data, status=effective_status(data)) if _is_row(data) else data


class WorkerIn(Strict):
    name: Name
    agent: Name
    processor: Name
    concurrency: Count | None = None


class WorkerUpdate(Renaming):
    agent: Name | None = None
    processor: Name | None = None
    concurrency: Count | None = None


class WorkerOut(Object):
    agent: str | None = Field(None, validation_alias=At("agent", "name"))
    processor: str = Field(validation_alias=At("processor", "name"))
    pid: int | None = None
    concurrency: int
    commit: str | None = None
    status: str

    @model_validator(mode="before")
    @classmethod
    def as_shown(cls, data: Any) -> Any:
        """Lost for a hand-started worker that stopped refreshing its row, as ``ls workers`` shows."""
        from pyfi.core.liveness import shown_worker_status

        return Shown(data, status=shown_worker_status(data)) if _is_row(data) else data


class SchedulerIn(Strict):
    name: Name
    strategy: Literal["BALANCED", "EFFICIENT"] = "BALANCED"
    interval: Count | None = Field(None, description="seconds between placement rounds")


class SchedulerUpdate(Renaming):
    strategy: Literal["BALANCED", "EFFICIENT"] | None = None
    interval: Count | None = None


class SchedulerOut(Object):
    strategy: str
    interval: int
    enabled: bool
    nodes: Names = []


class DeploymentIn(Strict):
    name: Name
    processor: Name
    hostname: Name = Field(description="the name of the node to run it on")
    cpus: Count | None = Field(None, description="worker processes to run there (default 1)")


class DeploymentUpdate(Renaming):
    processor: Name | None = None
    hostname: Name | None = None
    cpus: Count | None = None


class DeploymentOut(Object):
    processor: str = Field(validation_alias=At("processor", "name"))
    hostname: str
    cpus: int
    scheduler_id: str | None = None
