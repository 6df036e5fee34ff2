"""pyfi agent package."""
import re

#: spare workers an agent keeps by default (``agent start --spares``): each is an idle process of ~70 MB.
#: Here, not in agent.py, so the CLI's --help can show it without importing the agent.
MAX_SPARES = 4

#: a node name becomes a directory under PYFI_HOME/agents: one safe path component
#: (a hostname, made of letters, digits, '-' and '.', always is one)
NODE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
NODE_NAME_RULE = "use letters, digits, '.', '_' and '-', not starting with '.', at most 100 characters"
