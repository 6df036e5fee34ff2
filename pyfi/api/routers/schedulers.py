"""``/api/schedulers``: schedulers (list, get, add, update, delete) and their nodes, as ``pyfi scheduler``."""
from __future__ import annotations

from pydantic import BaseModel

from pyfi.api.crud import fresh, kind_router
from pyfi.api.deps import DB, Me
from pyfi.api.models import Name, NamePath, SchedulerIn, SchedulerOut, SchedulerUpdate
from pyfi.core import scheduling

router = kind_router("scheduler", SchedulerOut, SchedulerIn, SchedulerUpdate)


class NodeName(BaseModel):
    node: Name


@router.post("/{name}/nodes", response_model=SchedulerOut, operation_id="scheduler_add_node",
             summary="Give a scheduler a node to place on")
def add_node(name: NamePath, body: NodeName, session: DB, me: Me) -> SchedulerOut:
    return fresh(session, scheduling.add_node(session, me.actor, name, body.node), SchedulerOut)


@router.delete("/{name}/nodes/{node}", response_model=SchedulerOut, operation_id="scheduler_remove_node",
               summary="Take a node away from a scheduler")
def remove_node(name: NamePath, node: NamePath, session: DB, me: Me) -> SchedulerOut:
    return fresh(session, scheduling.remove_node(session, me.actor, name, node), SchedulerOut)
