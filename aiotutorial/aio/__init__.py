"""The aiopyramid architecture rebuilt for Python 3.11+: coroutine views on an asyncio server.

``config.include('aiotutorial.aio')`` makes Pyramid's request stack context-local, installs
``CoroutineOrExecutorMapper`` as the default view mapper and adds the ``add_startup_hook`` and
``add_shutdown_hook`` directives. Serve the application with
``aiotutorial.aio.gunicorn.AsyncGunicornWorker``. This package knows nothing of the rest of
aiotutorial.
"""

from typing import Any

from . import threadlocal
from .config import CoroutineMapper, CoroutineOrExecutorMapper, ExecutorMapper
from .helpers import ScopeError, spawn_greenlet, synchronize, use_executor
from .lifecycle import add_shutdown_hook, add_startup_hook, run_shutdown_hooks, run_startup_hooks
from .websocket import WebsocketConnection, WebsocketConnectionView, WebsocketMapper

__all__ = [
    "CoroutineMapper",
    "CoroutineOrExecutorMapper",
    "ExecutorMapper",
    "ScopeError",
    "WebsocketConnection",
    "WebsocketConnectionView",
    "WebsocketMapper",
    "run_shutdown_hooks",
    "run_startup_hooks",
    "spawn_greenlet",
    "synchronize",
    "use_executor",
]


def includeme(config: Any) -> None:
    threadlocal.install()
    config.add_directive("add_startup_hook", add_startup_hook)
    config.add_directive("add_shutdown_hook", add_shutdown_hook)
    config.include(".config")
