"""The greenlet bridge: run synchronous Pyramid code on the loop, waiting on coroutines.

Pyramid's router is synchronous. Each request runs it in a child greenlet of the loop's thread
(``spawn_greenlet``); when that synchronous code needs a coroutine's result it calls a
``synchronize``-d function, which suspends the greenlet, lets the event loop run the coroutine in
the request's task, and resumes the greenlet with the result (or the exception, traceback kept).
Blocking work goes to a thread pool (``use_executor``); threads there may call synchronized
coroutines too, which then run on the loop through ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from concurrent.futures import Executor
from typing import Any, ParamSpec, TypeVar

import greenlet

__all__ = [
    "ScopeError",
    "BridgeGreenlet",
    "drive_in_steps",
    "is_bridge_greenlet",
    "run_awaitable",
    "spawn_greenlet",
    "synchronize",
    "use_executor",
    "run_in_executor",
]

P = ParamSpec("P")
T = TypeVar("T")


class ScopeError(RuntimeError):
    """A synchronized coroutine was called where nothing can run it for the caller."""


class BridgeGreenlet(greenlet.greenlet):  # type: ignore[misc]  # greenlet ships no types
    """A child greenlet started by ``spawn_greenlet``; its parent is driving the event loop."""


class _Wait:
    """What a suspended bridge greenlet hands its parent: a future (or None) to wait for."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any] | None) -> None:
        self.future = future


# Set in executor threads started by ``run_in_executor``: the loop synchronized calls go to.
_thread_state = threading.local()


def is_bridge_greenlet() -> bool:
    """True inside a greenlet started by ``spawn_greenlet`` (where ``synchronize`` can suspend)."""
    return isinstance(greenlet.getcurrent(), BridgeGreenlet)


def run_awaitable(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` from synchronous code and return its result.

    Inside a bridge greenlet the awaitable is driven right here, in the greenlet, the way an
    asyncio task drives a coroutine: each time it waits on a future, the greenlet switches to
    its parent, which waits for that future on the loop and switches back. Code run by the
    coroutine may therefore call synchronized functions again, at any depth. In a thread of
    ``run_in_executor`` the awaitable is sent to the loop and the thread waits. Anywhere else
    this raises ``ScopeError`` (and closes a coroutine so that no warning follows).
    """
    current = greenlet.getcurrent()
    if isinstance(current, BridgeGreenlet):
        result: T = _drive(awaitable.__await__(), current)
        return result
    loop = getattr(_thread_state, "loop", None)
    if loop is not None and not loop.is_closed():
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), loop)
        return future.result()
    if inspect.iscoroutine(awaitable):
        awaitable.close()
    raise ScopeError(
        "a synchronized coroutine was called outside the greenlet bridge: call it from a view "
        "run by aiotutorial.aio's view mappers, from a function run with spawn_greenlet() or "
        "use_executor(), or await the coroutine function directly"
    )


def _drive(steps: Any, current: greenlet.greenlet) -> Any:
    """Run a coroutine's ``__await__`` iterator to its end, waiting on futures via the parent
    of ``current`` (the greenlet running this): whoever resumed it last (``spawn_greenlet``)."""
    pending: BaseException | None = None
    while True:
        try:
            if pending is None:
                yielded = steps.send(None)
            else:
                exc, pending = pending, None
                yielded = steps.throw(exc)
        except StopIteration as stop:
            return stop.value
        if yielded is not None:
            if not asyncio.isfuture(yielded):
                pending = RuntimeError(f"a coroutine in a bridge greenlet yielded {yielded!r}")
                continue
            # What an asyncio task does with a future its coroutine waits on.
            yielded._asyncio_future_blocking = False
        try:
            current.parent.switch(_Wait(yielded))
        except (greenlet.GreenletExit, GeneratorExit):
            # The greenlet itself is being closed (collected while suspended, or its task's
            # coroutine closed): close the coroutine as asyncio closes a pending task's, so
            # that its finally blocks run, then let the greenlet end the way it was asked to.
            if yielded is not None:
                yielded.cancel()
            steps.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - the request's task was cancelled
            # As a task would: cancel the future being waited on, so that the coroutine sees
            # CancelledError where it waits; if it cannot be cancelled (it is done already),
            # throw the error in where it waits.
            if yielded is None or not yielded.cancel():
                pending = exc


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _settle(future: asyncio.Future[Any] | None) -> None:
    """Wait until ``future`` is done, leaving its outcome for the coroutine that awaits it.

    What is raised here and is not the future's own outcome is this task's cancellation,
    also when it lands after the future finished but before the task resumed (asyncio
    then delivers CancelledError to the coroutine, and so must the bridge): it is raised.
    """
    if future is None:
        await asyncio.sleep(0)
        return
    try:
        await future
    except BaseException as exc:
        if not _outcome_of(future, exc):
            raise


def _outcome_of(future: asyncio.Future[Any] | None, exc: BaseException) -> bool:
    """Is ``exc``, raised by awaiting ``future``, the future's own outcome (rather than the
    waiting task's cancellation)?"""
    if future is None or not future.done():
        return False
    if future.cancelled():
        return isinstance(exc, asyncio.CancelledError)
    return future.exception() is exc


class _Done:
    """What a pooled greenlet hands its parent when its job is over: the outcome."""

    __slots__ = ("value", "error")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error


# Idle greenlets kept for reuse, per thread (a greenlet only runs in the thread it was made in).
POOL_SIZE = 64
_pool = threading.local()


class _PooledGreenlet(BridgeGreenlet):
    """A bridge greenlet that runs job after job: ``switch(fn, args, kwargs)`` runs one and
    hands back ``_Done``; then it waits, suspended, for the next.

    A new greenlet per request costs its creation and, when it ends, the release of its
    frame stack (an ``munmap``: 7 % of a worker serving a database page, in the profile).
    A greenlet is reused only when its job ended the ordinary way (a result, or an exception
    the job raised); one being closed (``GreenletExit``) ends.
    """

    def __init__(self) -> None:
        super().__init__(self._serve)

    def _serve(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        while True:
            try:
                done = _Done(fn(*args, **kwargs), None)
            except greenlet.GreenletExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
                done = _Done(None, exc)
            fn = args = kwargs = None  # type: ignore[assignment]  # hold nothing while idle
            idle: list[_PooledGreenlet] | None = getattr(_pool, "idle", None)
            if idle is None or len(idle) >= POOL_SIZE:
                return done  # the greenlet ends: enough are idle already
            fn, args, kwargs = self.parent.switch(done)


def _idle_greenlets() -> list[_PooledGreenlet]:
    idle: list[_PooledGreenlet] | None = getattr(_pool, "idle", None)
    if idle is None:
        idle = _pool.idle = []
    return idle


async def spawn_greenlet(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the plain function ``fn`` in a bridge greenlet and return what it returns.

    The greenlet runs inside the calling task: it shares the task's context (Pyramid's request
    stack is a context variable, see ``threadlocal``) and ``asyncio.current_task()``. If the
    task is cancelled, ``CancelledError`` is raised inside the greenlet where it waits, so
    its ``finally`` blocks run and it unwinds. Called from the loop's own greenlet (every
    request), the greenlet is an idle one of the thread's pool when there is one, and goes
    back there after; a spawn from inside a bridge greenlet gets a greenlet of its own.
    """
    current = greenlet.getcurrent()
    if isinstance(current, BridgeGreenlet):
        child: BridgeGreenlet = BridgeGreenlet(fn)
        child.gr_context = current.gr_context
        step: Any = child.switch(*args, **kwargs)
    else:
        idle = _idle_greenlets()
        child = idle.pop() if idle else _PooledGreenlet()
        child.parent = current  # (the loop's greenlet: the same one, but say so)
        child.gr_context = current.gr_context
        step = child.switch(fn, args, kwargs)
    while isinstance(step, _Wait) and not child.dead:
        try:
            await _settle(step.future)
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the greenlet
            # Resumed from where this coroutine now runs: a spawn from inside a bridge
            # greenlet (a websocket view's step) may go on in another one, or in the loop's.
            child.parent = greenlet.getcurrent()
            step = child.throw(type(exc), exc, exc.__traceback__)
        else:
            child.parent = greenlet.getcurrent()
            step = child.switch()
    if isinstance(step, _Done):
        if not child.dead:
            child.gr_context = None  # the request's context goes with the request
            _idle_greenlets().append(child)
        # Emptied: the idle greenlet still holds the _Done it handed over, not what was in it.
        error, value = step.error, step.value
        step.error = step.value = None
        if error is not None:
            raise error
        step = value
    result: T = step
    return result


async def drive_in_steps(awaitable: Awaitable[T], *, bridged: Callable[[], bool]) -> T:
    """Await ``awaitable`` (a coroutine) in the calling task, as the task would, one step at a
    time: each step (from one wait on the loop to the next) runs in a bridge greenlet of its
    own while ``bridged()`` is true, and directly afterwards.

    Synchronous code that the coroutine calls in a bridged step may wait on synchronized
    coroutines, as in a request's greenlet; but no greenlet lives between the steps, while the
    coroutine waits on the loop (a websocket view idle for hours holds none). A step costs a
    greenlet; once ``bridged()`` is false, nothing more than the task's own stepping.
    """
    coroutine = awaitable.__await__()
    error: BaseException | None = None
    try:
        while True:
            if bridged():
                finished, yielded = await spawn_greenlet(_step, coroutine, error)
            else:
                finished, yielded = _step(coroutine, error)
            error = None
            if finished:
                result: T = yielded
                return result
            if yielded is not None:
                if not asyncio.isfuture(yielded):
                    error = RuntimeError(f"a coroutine driven in steps yielded {yielded!r}")
                    continue
                # What an asyncio task does with a future its coroutine waits on.
                yielded._asyncio_future_blocking = False
            try:
                # ``_settle``'s wait, written out: an idle socket's view waits here, and one
                # coroutine less per socket is a few hundred bytes each.
                if yielded is None:
                    await asyncio.sleep(0)
                else:
                    await yielded
            except GeneratorExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - sorted out below
                if not _outcome_of(yielded, exc):
                    # This task was cancelled. As a task would: cancel the future being waited
                    # on, so that the coroutine sees CancelledError where it waits; else
                    # throw the error in there.
                    if yielded is None or not yielded.cancel():
                        error = exc
    except BaseException:
        # Raised by the coroutine (it is over: closing does nothing), or this driver is being
        # closed: the coroutine is closed too, so that its finally blocks run.
        coroutine.close()
        raise


def _step(coroutine: Generator[Any, None, Any], error: BaseException | None) -> tuple[bool, Any]:
    """Run ``coroutine`` until it waits or ends: (False, what it yielded) or (True, result)."""
    try:
        yielded = coroutine.send(None) if error is None else coroutine.throw(error)
    except StopIteration as stop:
        return True, stop.value
    return False, yielded


def synchronize(coroutine_function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Turn a coroutine function into a plain function usable from bridged synchronous code.

    The result can still be awaited directly as a coroutine function through ``.coroutine``.
    """
    if not inspect.iscoroutinefunction(coroutine_function):
        raise TypeError(f"synchronize() needs a coroutine function, got {coroutine_function!r}")

    @functools.wraps(coroutine_function)
    def synchronized(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_awaitable(coroutine_function(*args, **kwargs))

    synchronized.coroutine = coroutine_function  # type: ignore[attr-defined]
    return synchronized


def _run_bound(loop: asyncio.AbstractEventLoop, fn: Callable[[], T]) -> T:
    previous = getattr(_thread_state, "loop", None)
    _thread_state.loop = loop
    try:
        return fn()
    finally:
        _thread_state.loop = previous


async def run_in_executor(
    executor: Executor | None, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run blocking ``fn`` in ``executor`` (the loop's default when None) in the caller's context.

    The context (request, context variables) is copied into the thread, and the thread is bound
    to the loop so that synchronized coroutines called there work.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(fn, *args, **kwargs)
    return await loop.run_in_executor(executor, context.run, _run_bound, loop, call)


def use_executor(fn: Callable[P, T] | None = None, *, executor: Executor | None = None) -> Any:
    """Decorate a blocking function so that calling it returns a coroutine run in a thread pool.

    ``@use_executor`` uses the loop's default pool; ``@use_executor(executor=pool)`` a given one.
    """

    def decorate(func: Callable[P, T]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(func)
        async def in_executor(*args: P.args, **kwargs: P.kwargs) -> T:
            return await run_in_executor(executor, func, *args, **kwargs)

        return in_executor

    if fn is not None:
        return decorate(fn)
    return decorate
