"""The HTTP layer: the JSON API (``api/``), the server-rendered UI (``views.py``), the
unsubscribe links, and the dependencies and schemas they share. Assembled by ``app.py``."""
