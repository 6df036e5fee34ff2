"""``/api/deployments``: deployments, processors placed on a node by hand.

List, get, add, update and delete, as ``pyfi ls/add/update/delete deployment``.
"""
from __future__ import annotations

from pyfi.api.crud import kind_router
from pyfi.api.models import DeploymentOut, DeploymentIn, DeploymentUpdate

router = kind_router("deployment", DeploymentOut, DeploymentIn, DeploymentUpdate)
