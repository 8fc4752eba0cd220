"""SQLAlchemy statements compiled once, not on every execute.

aiopg.sa compiles every statement again each time it runs it (it has no compiled cache): the
profile of a database-backed JSON page showed a fifth of the worker's time there. This engine's
connections look the statement up by SQLAlchemy's own cache key (its structure, without the
values), keep the compiled SQL text, and take the values of each call from the key's extracted
parameters, as SQLAlchemy's ``Connection`` does with its compiled cache.

Statements whose SQL text depends on the values are compiled each time as before: an
``IN (...)`` of a list (aiopg renders one placeholder per item) or anything SQLAlchemy marks as
``literal_execute``. So are DDL, text statements, and executions with positional parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiopg.sa.connection import SAConnection, _distill_params
from aiopg.sa.engine import Engine
from aiopg.sa.result import ResultProxy
from sqlalchemy.sql.ddl import DDLElement
from sqlalchemy.sql.elements import ClauseElement

__all__ = ["CachingEngine", "CachingConnection", "Prepared", "CACHE_SIZE"]

CACHE_SIZE = 500


class _Compiled:
    __slots__ = ("compiled", "sql", "processors", "result_map")

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.sql = str(compiled)
        self.processors = compiled._bind_processors
        self.result_map = compiled._result_columns


def _processed(entry: _Compiled, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` through the statement's bind processors (types that convert on the way in)."""
    processors = entry.processors
    if not processors:
        return values
    return {
        name: processors[name](value) if name in processors else value
        for name, value in values.items()
    }


class Prepared:
    """A hot statement built once with named ``bindparam``s, compiled at its first run and
    run with its values as keyword arguments: ``await conn.scalar(FIND, name="x")``. Even
    the cache key is not computed again (its traversal costs a few percent of a request)."""

    __slots__ = ("statement", "_entry")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._entry: _Compiled | None = None

    def compiled(self, dialect: Any, compile_kwargs: dict[str, Any]) -> _Compiled:
        if self._entry is None:
            self._entry = _Compiled(self.statement.compile(dialect=dialect, **compile_kwargs))
        return self._entry

    def __repr__(self) -> str:
        return f"Prepared({self.statement})"


class CachingConnection(SAConnection):
    """An aiopg.sa connection whose statements are compiled once per structure."""

    async def _execute(self, query: Any, *multiparams: Any, **params: Any) -> Any:
        if isinstance(query, Prepared):
            distilled = _distill_params(multiparams, params)
            entry = query.compiled(self._dialect, {"compile_kwargs": self._query_compile_kwargs})
            values = entry.compiled.construct_params(distilled[0] if distilled else None)
            return await self._run(entry, values)
        if not isinstance(query, ClauseElement) or isinstance(query, DDLElement):
            return await super()._execute(query, *multiparams, **params)
        distilled = _distill_params(multiparams, params)
        if len(distilled) > 1 or (distilled and not isinstance(distilled[0], dict)):
            return await super()._execute(query, *multiparams, **params)
        key = query._generate_cache_key()
        if key is None or any(bind.expanding or bind.literal_execute for bind in key.bindparams):
            return await super()._execute(query, *multiparams, **params)
        entry = self._engine.compiled_statement(query, key, self._query_compile_kwargs)
        values = entry.compiled.construct_params(
            distilled[0] if distilled else None, extracted_parameters=key.bindparams
        )
        return await self._run(entry, values)

    async def _run(self, entry: _Compiled, values: dict[str, Any]) -> Any:
        values = _processed(entry, values)
        cursor = await self._open_cursor()
        await cursor.execute(entry.sql, values)
        return ResultProxy(self, cursor, self._dialect, entry.result_map)

    async def scalar(self, query: Any, *multiparams: Any, **params: Any) -> Any:
        """The first column of the first row; a prepared statement's without a result proxy."""
        if isinstance(query, Prepared) and not multiparams:
            found = await self.rows(query, **params)
            return found[0][0] if found else None
        return await super().scalar(query, *multiparams, **params)

    async def rows(self, query: Prepared, **values: Any) -> list[tuple[Any, ...]]:
        """The rows of a prepared SELECT as the driver returns them: plain tuples, read by
        position (no result proxy, no row objects: for pages of many rows)."""
        entry = query.compiled(self._dialect, {"compile_kwargs": self._query_compile_kwargs})
        params = _processed(entry, entry.compiled.construct_params(values))
        cursor = await self._open_cursor()
        try:
            await cursor.execute(entry.sql, params)
            if cursor.description is None:  # a statement that returns no rows
                return []
            rows: list[tuple[Any, ...]] = await cursor.fetchall()
        finally:
            self._close_cursor(cursor)
        return rows


class CachingEngine(Engine):
    """An aiopg.sa engine whose connections share one compiled-statement cache (LRU)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._compiled: OrderedDict[Any, _Compiled] = OrderedDict()

    async def _acquire(self) -> CachingConnection:
        raw = await self._pool.acquire()
        return CachingConnection(raw, self)

    def compiled_statement(self, query: Any, key: Any, compile_kwargs: dict[str, Any]) -> _Compiled:
        entry = self._compiled.get(key.key)
        if entry is not None:
            self._compiled.move_to_end(key.key)
            return entry
        compiled = query._compiler(self.dialect, cache_key=key, compile_kwargs=compile_kwargs)
        entry = _Compiled(compiled)
        self._compiled[key.key] = entry
        if len(self._compiled) > CACHE_SIZE:
            self._compiled.popitem(last=False)
        return entry
