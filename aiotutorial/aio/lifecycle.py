"""Async startup and shutdown hooks that includes register and the server runs in its loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pyramid.registry import Registry

__all__ = ["add_startup_hook", "add_shutdown_hook", "run_startup_hooks", "run_shutdown_hooks"]

log = logging.getLogger(__name__)

Hook = Callable[[Registry], Awaitable[Any]]
_STARTUP = "aio.startup_hooks"
_SHUTDOWN = "aio.shutdown_hooks"
_STARTED = "aio.started_hooks"


def add_startup_hook(config: Any, hook: Hook) -> None:
    """``config.add_startup_hook(fn)``: ``await fn(registry)`` when a worker's loop starts."""
    config.registry.setdefault(_STARTUP, []).append(config.maybe_dotted(hook))


def add_shutdown_hook(config: Any, hook: Hook) -> None:
    """``config.add_shutdown_hook(fn)``: ``await fn(registry)`` when it stops (reverse order);
    also when a startup hook failed, so ``fn`` stops only what was started."""
    config.registry.setdefault(_SHUTDOWN, []).append(config.maybe_dotted(hook))


async def run_startup_hooks(registry: Registry) -> None:
    """Run the startup hooks in registration order; any failure stops the worker's boot.

    When one fails, the shutdown hooks run before the error goes on, so that what the hooks
    before it started is stopped: a shutdown hook must therefore cope with its startup hook
    not having run (stop what is there).
    """
    registry[_STARTED] = True
    try:
        for hook in registry.get(_STARTUP, ()):
            await hook(registry)
    except BaseException:
        await run_shutdown_hooks(registry)
        raise


async def run_shutdown_hooks(registry: Registry) -> None:
    """Run the shutdown hooks in reverse order; a failing hook is logged, the others still run."""
    if not registry.get(_STARTED):
        return
    registry[_STARTED] = False
    for hook in reversed(registry.get(_SHUTDOWN, ())):
        try:
            await hook(registry)
        except Exception:
            log.exception("shutdown hook %r failed", hook)
