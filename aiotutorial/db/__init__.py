"""The database: the schema, the engine of each worker, ``request.db``, and what its failures
mean. PostgreSQL through aiopg.sa (SQLAlchemy 1.4 Core).

- ``schema``: the tables (the tutorial's ``users``, ``chats``, ``messages``, ``games``,
  ``scores`` first, then what later migrations added);
- ``engine``: one engine (a pool) per worker, opened and closed by startup and shutdown hooks,
  and ``run_transaction`` for work outside a request;
- ``request``: ``request.db``, the request's connection, acquired on first use;
- ``errors``: the one tuple of connection errors, the one retry of conflicting transactions,
  the 503s they become;
- ``compiled``: statements compiled once; ``types``: aiopg.sa's interfaces as types;
- ``groupcommit``: writes to one key batched into the next transaction;
- ``clock``: the database's clock, the one every process reads;
- ``transactions``: transactions whose work after the commit (a publish) waits for it.
"""

from __future__ import annotations

from typing import Any

from ..aio.requests import request_factory_provides
from .clock import database_time
from .engine import (
    DEFAULTS,
    database_url,
    dsn_from_url,
    get_engine,
    open_engine,
    run_transaction,
    start_engine,
    stop_engine,
)
from .errors import (
    CONNECTION_ERRORS,
    RETRYABLE,
    DatabaseConflict,
    DatabaseUnavailable,
    connection_lost,
    side_effect_free,
)
from .request import CONNECTION_ENVIRON_KEY, RequestConnection, request_db
from .transactions import after_commit, transaction

__all__ = [
    "CONNECTION_ENVIRON_KEY",
    "CONNECTION_ERRORS",
    "RETRYABLE",
    "DatabaseConflict",
    "DatabaseUnavailable",
    "RequestConnection",
    "connection_lost",
    "database_time",
    "database_url",
    "dsn_from_url",
    "get_engine",
    "open_engine",
    "run_transaction",
    "side_effect_free",
    "transaction",
    "after_commit",
    "includeme",
]


def includeme(config: Any) -> None:
    """``request.db`` and the engine's startup and shutdown."""
    settings = config.get_settings()
    for key, default in DEFAULTS.items():
        value = settings.get(key, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or (key == "db.pool_max" and number < 1):
            raise ValueError(f"{key} must be a non-negative number, got {value!r}")
    # Decided once, here: DATABASE_URL, else the ini's sqlalchemy.url, else the embedded one.
    settings["sqlalchemy.url"] = database_url(settings)
    if not request_factory_provides(config, "db"):
        config.add_request_method(request_db, "db", reify=True)
    config.add_startup_hook(start_engine)
    config.add_shutdown_hook(stop_engine)
