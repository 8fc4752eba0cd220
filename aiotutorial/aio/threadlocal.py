"""Pyramid's "threadlocal" request stack, kept per request context instead of per thread.

Pyramid pushes ``{'request', 'registry'}`` on ``pyramid.threadlocal.manager`` when a request
starts and pops it when it ends. Here many requests interleave as greenlets on one thread, so a
per-thread stack would hand a view another request's entry. The stack is moved into a context
variable: each request runs in its own asyncio task, whose context the request's greenlet shares
and which ``run_in_executor`` copies into threads, so ``get_current_request()`` is always the
caller's own request. Patching the manager's class covers every module holding a reference to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pyramid import threadlocal

_stack: ContextVar[tuple[dict[str, Any], ...]] = ContextVar("pyramid_request_stack", default=())
_installed = False


def _push(self: threadlocal.ThreadLocalManager, info: dict[str, Any]) -> None:
    _stack.set((*_stack.get(), info))


def _pop(self: threadlocal.ThreadLocalManager) -> dict[str, Any] | None:
    stack = _stack.get()
    if not stack:
        return None
    _stack.set(stack[:-1])
    return stack[-1]


def _get(self: threadlocal.ThreadLocalManager) -> dict[str, Any]:
    stack = _stack.get()
    if stack:
        return stack[-1]
    default: dict[str, Any] = self.default()
    return default


def _clear(self: threadlocal.ThreadLocalManager) -> None:
    _stack.set(())


def _stack_view(self: threadlocal.ThreadLocalManager) -> list[dict[str, Any]]:
    # Read-only snapshot for code that inspects ``manager.stack`` directly.
    return list(_stack.get())


def _ignore_stack_assignment(self: threadlocal.ThreadLocalManager, value: Any) -> None:
    # ThreadLocalManager.__init__ assigns ``self.stack = []`` on each new thread; the context
    # variable is the storage now, so that assignment is dropped.
    pass


@contextmanager
def no_current_request() -> Iterator[None]:
    """Within the block, the caller's context has no request on Pyramid's stack.

    What the loop is asked to run meanwhile (a timer, a task) keeps a copy of the context it
    was scheduled from: a websocket's heartbeat timer, started by the handshake, would keep
    the request and its environ alive for the socket's life.
    """
    token = _stack.set(())
    try:
        yield
    finally:
        _stack.reset(token)


def install() -> None:
    """Make Pyramid's request stack context-local. Idempotent; done by ``includeme``."""
    global _installed
    if _installed:
        return
    cls = threadlocal.ThreadLocalManager
    cls.push = _push
    cls.set = _push
    cls.pop = _pop
    cls.get = _get
    cls.clear = _clear
    cls.stack = property(_stack_view, _ignore_stack_assignment)
    _installed = True
