"""``/api/nodes``: nodes (list, get, add, update, delete) and ``POST /api/nodes/{name}/{cordon|uncordon|drain}``."""
from __future__ import annotations

from typing import Literal

from pyfi.api.crud import kind_router
from pyfi.api.deps import DB, Me
from pyfi.api.models import NamePath, NodeIn, NodeOut, NodeUpdate
from pyfi.core import scheduling

router = kind_router("node", NodeOut, NodeIn, NodeUpdate)


@router.post("/{name}/{command}", response_model=NodeOut, operation_id="node_state",
             summary="Cordon, uncordon or drain a node")
def set_state(name: NamePath, command: Literal["cordon", "uncordon", "drain"], session: DB, me: Me) -> NodeOut:
    return NodeOut.model_validate(scheduling.set_node_state(session, me.actor, name, command))
