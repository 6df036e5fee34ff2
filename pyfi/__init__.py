"""pyfi: a distributed network of Python functions.

Importing the package has no side effects: no configuration is read, no
database is opened and Celery is not imported.
"""

__version__ = "0.1.0"
