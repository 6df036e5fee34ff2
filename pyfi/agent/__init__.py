"""pyfi agent package."""
from pyfi.core.names import NODE_NAME, NODE_NAME_RULE

__all__ = ["MAX_SPARES", "NODE_NAME", "NODE_NAME_RULE", "STALLED_AFTER"]

#: spare workers an agent keeps by default (``agent start --spares``): each is an idle process of ~70 MB.
#: Here, not in agent.py, so the CLI's --help can show it without importing the agent.
MAX_SPARES = 4
#: seconds a call may wait for a free pool process that does not take it before the agent restarts its worker
#: (``agent start --stalled-after``; :mod:`pyfi.agent.stalls`)
STALLED_AFTER = 60.0
