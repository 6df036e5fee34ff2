"""``/api/agents``: agents (agents register themselves when they start).

List, get, add, update and delete, as ``pyfi ls/add/update/delete agent``.
"""
from __future__ import annotations

from pyfi.api.crud import kind_router
from pyfi.api.models import AgentOut, AgentIn, AgentUpdate

router = kind_router("agent", AgentOut, AgentIn, AgentUpdate)
