"""pyfi agent package."""

#: spare workers an agent keeps by default (``agent start --spares``): each is an idle process of ~70 MB.
#: Here, not in agent.py, so the CLI's --help can show it without importing the agent.
MAX_SPARES = 4
