"""What the code uses of aiopg.sa, as types: aiopg's ``sa`` layer has none.

Structural (``Protocol``): aiopg's engine and connections fit them, and so do the small fakes
some tests hand the realtime hub.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

__all__ = ["Result", "Connection", "Engine"]


class Result(Protocol):
    """A statement's result (aiopg.sa's ``ResultProxy``)."""

    async def fetchall(self) -> list[Any]: ...

    async def first(self) -> Any: ...


class Connection(Protocol):
    """A connection (aiopg.sa's ``SAConnection``)."""

    async def execute(self, query: Any, *multiparams: Any, **params: Any) -> Any: ...

    async def scalar(self, query: Any, *multiparams: Any, **params: Any) -> Any: ...

    def begin(self) -> Any: ...


class RowsConnection(Connection, Protocol):
    """The app's connections (``compiled.CachingConnection``, ``request.db``): they also
    return a prepared SELECT's rows as plain tuples."""

    async def rows(self, query: Any, **params: Any) -> list[tuple[Any, ...]]: ...


class Engine(Protocol):
    """A pool of connections (aiopg.sa's ``Engine``)."""

    def acquire(self) -> AbstractAsyncContextManager[Any]: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...
