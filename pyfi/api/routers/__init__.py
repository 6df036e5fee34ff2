"""The API's routers, one module per resource; :data:`pyfi.api.app.ROUTERS` names those the app includes."""
