"""pyfi's REST API: a FastAPI application over ``pyfi.core`` (:func:`pyfi.api.app.create_app`), served by
``pyfi api start`` (:mod:`pyfi.api.server`).

- :mod:`pyfi.api.deps`: each request's transaction and caller (the user a bearer token names).
- :mod:`pyfi.api.errors`: pyfi's exceptions as HTTP answers, once for every route.
- :mod:`pyfi.api.crud`: the list, get, add, update and delete routes every object kind shares.
- :mod:`pyfi.api.models`, :mod:`pyfi.api.models_users`: the typed request and response bodies.
- :mod:`pyfi.api.routers`: one module per resource.

Importing the package imports nothing else: FastAPI is loaded by the modules that use it.
"""
