"""``/api/sockets``: sockets, task functions bound to a queue.

List, get, add, update and delete, as ``pyfi ls/add/update/delete socket``.
"""
from __future__ import annotations

from pyfi.api.crud import kind_router
from pyfi.api.models import SocketOut, SocketIn, SocketUpdate

router = kind_router("socket", SocketOut, SocketIn, SocketUpdate)
