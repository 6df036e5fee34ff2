"""What a processor function may return to steer its result along plugs.

A plain return value goes to every RESULT plug leaving the socket. To send
values to some plugs only (a router), return :class:`Routed`::

    from pyfi.flow import Routed

    def classify(order):
        if order["total"] > 1000:
            return Routed({"to-review": order})
        return Routed({"to-ship": order, "to-audit": order["id"]})

Keys are plug names; each listed plug gets its own value, plugs not listed
get nothing. ``Routed`` is a ``dict``, so the call's stored result (what
``pyfi task run`` prints and ``pyfi ls call --result`` shows) is that
mapping as plain JSON: nothing but JSON ever crosses the wire.

This module is imported by user code inside workers: keep it free of
imports beyond the standard library.
"""
from __future__ import annotations

from typing import Any


class Routed(dict):
    """``{plug name: value}``: a result for the named plugs only."""

    def __init__(self, values: dict[str, Any] | None = None, /, **more: Any) -> None:
        super().__init__(values or {}, **more)
        bad = [key for key in self if not isinstance(key, str)]
        if bad:
            raise TypeError(f"Routed keys must be plug names (str), got {bad!r}")

