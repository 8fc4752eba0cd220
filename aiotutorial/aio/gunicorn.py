"""``AsyncGunicornWorker``: a gunicorn worker serving a WSGI (Pyramid) app on an asyncio loop.

Built on aiohttp's gunicorn worker (HTTP/1.1 keep-alive and websockets in one server): the
loaded WSGI application is wrapped by the greenlet bridge (``aiotutorial.aio.wsgi``). On SIGTERM
the worker stops accepting, closes websockets with 1001, lets requests in flight finish within
gunicorn's ``graceful_timeout``, runs the application's shutdown hooks, and then cancels
what tasks are left before the loop is closed (``end_leftover_tasks``).

Use it as ``worker_class = aiotutorial.aio.gunicorn.AsyncGunicornWorker``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from typing import Any

from aiohttp import web
from aiohttp.worker import GunicornWebWorker
from gunicorn.workers.base import Worker

from .wsgi import BridgeSettings, application_settings, make_aiohttp_app

__all__ = ["AsyncGunicornWorker", "end_leftover_tasks"]

log = logging.getLogger(__name__)


class AsyncGunicornWorker(GunicornWebWorker):
    """Runs ``aiotutorial.aio.wsgi.WSGIBridge`` over the loaded app in each worker process."""

    def init_process(self) -> None:
        # The loop is made once the application is loaded (``load_wsgi``), because its
        # settings say whether to use uvloop; until then plain signal handlers are in place.
        self.loop = None  # type: ignore[assignment]  # no loop yet, on purpose
        Worker.init_process(self)

    def init_signals(self) -> None:
        if self.loop is None:
            Worker.init_signals(self)
        else:
            super().init_signals()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        application: Any = getattr(self, "wsgi")  # noqa: B009 - gunicorn's attribute is untyped
        settings = BridgeSettings(application_settings(application))
        self.loop = _new_event_loop(settings.uvloop)
        asyncio.set_event_loop(self.loop)
        self.init_signals()

        async def make_app() -> web.Application:
            return make_aiohttp_app(application, settings)

        self.wsgi = make_app  # what aiohttp's worker serves: a factory of the aiohttp app
        # What the worker loaded (modules, the app, its registry, compiled templates) lives as
        # long as the worker: out of the collector's way, so that its full collections do not
        # walk it again and again (the collector was 2-3 % of a worker serving a database page).
        gc.collect()
        gc.freeze()
        # A request allocates a few thousand objects, nearly all freed by their reference
        # counts: collecting the young generation every 700 allocations (the default) walks the
        # live ones of the requests in flight several times per request; every 10,000, rarely.
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

    def notify(self) -> None:
        super().notify()
        # aiohttp's worker first notifies the arbiter once its sites accept connections: say so
        # once, so that whoever started the server (a test, an operator) knows this worker takes
        # its share of new connections from now on, not only that some worker answers.
        if not getattr(self, "_said_serving", False):
            self._said_serving = True
            self.log.info("Worker serving (pid: %s)", os.getpid())

    async def _run(self) -> None:
        try:
            await super()._run()
        finally:
            await end_leftover_tasks()

    def handle_exit(self, sig: int, frame: Any) -> None:
        # Wake the serving loop now rather than at its next once-a-second check.
        super().handle_exit(sig, frame)
        self._notify_waiter_done()

    def _get_valid_log_format(self, source_format: str) -> str:
        # gunicorn's %(h)s-style access log format is not aiohttp's; keep aiohttp's default
        # unless an aiohttp-style format was given.
        if "%(" in source_format:
            return self.DEFAULT_AIOHTTP_LOG_FORMAT
        return source_format


# Allocations between two collections of the collector's young generation, in a worker.
GC_YOUNG_THRESHOLD = 10_000

# Seconds the tasks still running after the server's shutdown get to end once cancelled.
LEFTOVER_TASK_TIMEOUT = 5.0


async def end_leftover_tasks() -> None:
    """Cancel the tasks still running on the loop, and wait for them, before it is closed.

    aiohttp's worker closes its loop as soon as the server has shut down, and a task still
    pending then is destroyed half-way ("Task was destroyed but it is pending!", its
    ``finally`` blocks never run). One is left by each request refused with 413 before its
    body was read whose client then went away: aiohttp lingers on the connection to drain the
    body, and nothing wakes it up before its lingering time (10 s) is over; the connection is
    no longer the server's, so the server's shutdown does not cancel it. ``asyncio.run`` ends
    its leftover tasks the same way.
    """
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    done, pending = await asyncio.wait(leftovers, timeout=LEFTOVER_TASK_TIMEOUT)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("%r failed at shutdown", task, exc_info=task.exception())
    for task in pending:
        log.error(
            "%r still running %s s after it was cancelled at shutdown", task, LEFTOVER_TASK_TIMEOUT
        )


def _new_event_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    if use_uvloop:
        try:
            import uvloop
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise RuntimeError("aio.uvloop = true needs uvloop (the 'uvloop' extra)") from exc
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()
