"""``/api/workers``: workers (agents register the ones they run).

List, get, add, update and delete, as ``pyfi ls/add/update/delete worker``.
"""
from __future__ import annotations

from pyfi.api.crud import kind_router
from pyfi.api.models import WorkerOut, WorkerIn, WorkerUpdate

router = kind_router("worker", WorkerOut, WorkerIn, WorkerUpdate)
