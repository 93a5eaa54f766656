"""The bounce service: everything with I/O. It depends on ``bounceback.core``, never the reverse.

Layers, each importing only those before it:

    settings -> db (models, session, migrations) -> domain (plain functions over a session; the
    caller owns the transaction) -> outbound, receivers, worker, web (API and UI) -> app / serve
"""
