"""``/api/queues``: queues.

List, get, add, update and delete, as ``pyfi ls/add/update/delete queue``.
"""
from __future__ import annotations

from pyfi.api.crud import kind_router
from pyfi.api.models import QueueOut, QueueIn, QueueUpdate

router = kind_router("queue", QueueOut, QueueIn, QueueUpdate)
