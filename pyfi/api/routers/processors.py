"""``/api/processors``: processors (list, get, add, update, delete) and their actions, as ``pyfi proc``.

``POST /api/processors/{name}/{action}`` records what the processor should do
(start, stop, pause, resume, restart) with the right ``pyfi proc ACTION``
needs, then rings the agents' doorbell once the change is committed.
"""
from __future__ import annotations

from typing import Literal

from fastapi import BackgroundTasks, Request

from pyfi.api.crud import kind_router
from pyfi.api.deps import DB, Me
from pyfi.api.models import NamePath, ProcessorIn, ProcessorOut, ProcessorUpdate
from pyfi.core import processors
from pyfi.core.network import namespace
from pyfi.messaging.doorbell import ring

router = kind_router("processor", ProcessorOut, ProcessorIn, ProcessorUpdate)

Action = Literal["start", "stop", "pause", "resume", "restart"]


@router.post("/{name}/{action}", response_model=ProcessorOut, operation_id="processor_action",
             summary="Start, stop, pause, resume or restart a processor")
def act(name: NamePath, action: Action, request: Request, background: BackgroundTasks, session: DB,
        me: Me) -> ProcessorOut:
    processor = processors.request(session, me.actor, action, name, None)
    pubsub = request.app.state.core.settings.pubsub
    background.add_task(ring, pubsub, processor.name, namespace(session))  # after the commit: agents act at once
    return ProcessorOut.model_validate(processor)
