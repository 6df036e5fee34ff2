"""``/api/plugs``: plugs, wires from a socket's result to another socket.

List, get, add, update and delete, as ``pyfi ls/add/update/delete plug``.
"""
from __future__ import annotations

from pyfi.api.crud import kind_router
from pyfi.api.models import PlugOut, PlugIn, PlugUpdate

router = kind_router("plug", PlugOut, PlugIn, PlugUpdate)
