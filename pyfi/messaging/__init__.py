"""Messaging: the Celery app, routing, and the lifecycle pub/sub protocol."""
