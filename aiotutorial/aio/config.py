"""View mappers: how Pyramid calls coroutine views on the loop and plain views in a thread pool.

``CoroutineOrExecutorMapper`` (the default once ``aiotutorial.aio`` is included) looks at the
view: an ``async def`` view is awaited through the greenlet bridge, anything else runs in the
registry's bounded thread pool. ``CoroutineMapper`` and ``ExecutorMapper`` take only their kind
and refuse the other at configuration time.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyramid.exceptions import ConfigurationError
from pyramid.httpexceptions import default_exceptionresponse_view
from pyramid.registry import Registry
from pyramid.viewderivers import DefaultViewMapper

from .helpers import run_awaitable, run_in_executor

__all__ = [
    "CoroutineMapper",
    "ExecutorMapper",
    "CoroutineOrExecutorMapper",
    "is_coroutine_view",
    "get_executor",
    "shutdown_executor",
]

DEFAULT_EXECUTOR_THREADS = 10

# Views that only build a response object from what they are given: running them in a thread
# would cost a thread hop for nothing, so they run inline in the request's greenlet.
_INLINE_VIEWS = {default_exceptionresponse_view}

_executor_lock = threading.Lock()


def is_coroutine_view(view: Any, attr: str | None = None) -> bool:
    """True when calling ``view`` as Pyramid would (maybe through ``attr``) yields a coroutine."""
    if inspect.isclass(view):
        target = getattr(view, attr or "__call__", None)
    elif attr is not None:
        target = getattr(view, attr, None)
    elif inspect.isroutine(view) or hasattr(view, "func"):
        target = view
    else:
        target = getattr(view, "__call__", None)  # noqa: B004 - a callable instance's method
    return target is not None and inspect.iscoroutinefunction(target)


def get_executor(registry: Registry) -> ThreadPoolExecutor:
    """The registry's bounded thread pool for synchronous views, made per process on first use."""
    pid = os.getpid()
    pool: ThreadPoolExecutor | None = getattr(registry, "_aio_executor", None)
    if pool is not None and getattr(registry, "_aio_executor_pid", None) == pid:
        return pool
    with _executor_lock:
        pool = getattr(registry, "_aio_executor", None)
        if pool is None or getattr(registry, "_aio_executor_pid", None) != pid:
            settings = registry.settings or {}
            threads = int(settings.get("aio.executor_threads", DEFAULT_EXECUTOR_THREADS))
            if threads < 1:
                raise ConfigurationError("aio.executor_threads must be at least 1")
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aio-executor")
            registry._aio_executor = pool
            registry._aio_executor_pid = pid
    return pool


async def shutdown_executor(registry: Registry) -> None:
    """Shutdown hook: let the pool's threads finish their work and end."""
    pool = getattr(registry, "_aio_executor", None)
    if pool is not None and getattr(registry, "_aio_executor_pid", None) == os.getpid():
        registry._aio_executor = None
        pool.shutdown(wait=False, cancel_futures=True)


ViewCallable = Callable[[Any, Any], Any]


def _in_executor(mapped: ViewCallable) -> ViewCallable:
    def executor_view(context: Any, request: Any) -> Any:
        pool = get_executor(request.registry)
        return run_awaitable(run_in_executor(pool, mapped, context, request))

    return executor_view


class _BridgeMapper(DefaultViewMapper):  # type: ignore[misc]  # Pyramid is untyped
    """Maps the view as Pyramid does, then wraps the call for the bridge."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.attr = kw.get("attr")

    def __call__(self, view: Any) -> Callable[[Any, Any], Any]:
        is_coroutine = is_coroutine_view(view, self.attr)
        mapped = super().__call__(view)
        if is_coroutine:
            wrapped = self.wrap_coroutine_view(mapped, view)
        else:
            wrapped = self.wrap_plain_view(mapped, view)
        # Pyramid's debug tools describe a view by its __text__.
        wrapped.__text__ = getattr(mapped, "__text__", repr(view))  # type: ignore[attr-defined]
        return wrapped

    def wrap_coroutine_view(self, mapped: ViewCallable, view: Any) -> ViewCallable:
        def coroutine_view(context: Any, request: Any) -> Any:
            return run_awaitable(mapped(context, request))

        return coroutine_view

    def wrap_plain_view(self, mapped: ViewCallable, view: Any) -> ViewCallable:
        if view in _INLINE_VIEWS:
            return mapped
        return _in_executor(mapped)


class CoroutineOrExecutorMapper(_BridgeMapper):
    """The default mapper: coroutine views on the loop, plain views in the thread pool."""


class CoroutineMapper(_BridgeMapper):
    """Only coroutine views; a plain view is a configuration error."""

    def wrap_plain_view(self, mapped: ViewCallable, view: Any) -> ViewCallable:
        raise ConfigurationError(
            f"CoroutineMapper needs an async def view (or attr), got the plain callable {view!r}; "
            "use ExecutorMapper or the default mapper for synchronous views"
        )


class ExecutorMapper(_BridgeMapper):
    """Only plain views, always in the thread pool; a coroutine view is a configuration error."""

    def wrap_coroutine_view(self, mapped: ViewCallable, view: Any) -> ViewCallable:
        raise ConfigurationError(
            f"ExecutorMapper runs blocking views in threads, but {view!r} is a coroutine view; "
            "use CoroutineMapper or the default mapper for it"
        )

    def wrap_plain_view(self, mapped: ViewCallable, view: Any) -> ViewCallable:
        return _in_executor(mapped)


def includeme(config: Any) -> None:
    """Install the default mapper and the per-process executor's shutdown."""
    settings = config.get_settings()
    threads = settings.get("aio.executor_threads", DEFAULT_EXECUTOR_THREADS)
    try:
        if int(threads) < 1:
            raise ValueError
    except ValueError as exc:
        raise ConfigurationError(
            f"aio.executor_threads must be a positive integer, got {threads!r}"
        ) from exc
    config.set_view_mapper(CoroutineOrExecutorMapper)
    config.add_shutdown_hook(shutdown_executor)
