"""The greenlet bridge: synchronize, spawn_greenlet, use_executor, ScopeError, cancellation."""

from __future__ import annotations

import asyncio
import threading
import traceback
import unittest
from collections.abc import Awaitable, Callable
from typing import Any

import greenlet

from aiotutorial.aio.helpers import (
    BridgeGreenlet,
    ScopeError,
    is_bridge_greenlet,
    run_awaitable,
    run_in_executor,
    spawn_greenlet,
    synchronize,
    use_executor,
)


class Boom(Exception):
    pass


@synchronize
async def add_later(a: int, b: int) -> int:
    await asyncio.sleep(0.001)
    return a + b


@synchronize
async def fail_later() -> None:
    await asyncio.sleep(0)
    raise Boom("from the coroutine")


class SynchronizeTest(unittest.IsolatedAsyncioTestCase):
    async def test_result_comes_back_to_synchronous_code(self):
        def body(x):
            return add_later(x, 1) * 10

        self.assertEqual(await spawn_greenlet(body, 4), 50)

    async def test_nested_synchronous_calls(self):
        def inner(n):
            return add_later(n, n)

        def middle(n):
            return inner(n) + inner(n + 1)

        def outer():
            self.assertTrue(is_bridge_greenlet())
            return [middle(i) for i in range(5)]

        self.assertEqual(await spawn_greenlet(outer), [2, 6, 10, 14, 18])

    async def test_exception_keeps_the_coroutine_frames(self):
        def body():
            fail_later()

        try:
            await spawn_greenlet(body)
        except Boom as exc:
            frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
        else:
            self.fail("the exception was lost")
        self.assertIn("fail_later", frames)  # where it was raised, in the coroutine
        self.assertIn("body", frames)  # and the synchronous caller

    async def test_exception_can_be_caught_in_synchronous_code(self):
        def body():
            try:
                fail_later()
            except Boom as exc:
                return f"caught {exc}"

        self.assertEqual(await spawn_greenlet(body), "caught from the coroutine")

    async def test_scope_error_outside_the_bridge(self):
        with self.assertRaises(ScopeError) as caught:
            add_later(1, 2)
        self.assertIn("spawn_greenlet", str(caught.exception))

    def test_scope_error_in_a_plain_thread(self):
        errors = []

        def in_thread():
            try:
                add_later(1, 2)
            except ScopeError as exc:
                errors.append(exc)

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        self.assertEqual(len(errors), 1)

    def test_synchronize_refuses_a_plain_function(self):
        with self.assertRaises(TypeError):
            synchronize(lambda: None)

    async def test_synchronized_function_can_still_be_awaited(self):
        self.assertEqual(await add_later.coroutine(2, 3), 5)

    async def test_many_greenlets_interleave(self):
        order = []

        @synchronize
        async def pause(delay):
            await asyncio.sleep(delay)

        def body(i):
            order.append(("start", i))
            pause(0.01 * (5 - i))
            order.append(("end", i))
            return i

        results = await asyncio.gather(*(spawn_greenlet(body, i) for i in range(5)))
        self.assertEqual(results, list(range(5)))
        # All started before any finished, and the shortest pause finished first.
        self.assertEqual([step for step, _ in order[:5]], ["start"] * 5)
        self.assertEqual(order[5], ("end", 4))


class DeepNestingTest(unittest.IsolatedAsyncioTestCase):
    async def test_coroutine_run_by_the_bridge_may_call_synchronized_code(self):
        """sync -> coroutine -> sync -> coroutine, all on one greenlet (e.g. request.identity
        read inside an async view, where the identity lookup is a synchronized coroutine)."""

        def lookup(n):
            return add_later(n, 100)

        @synchronize
        async def view_like(n):
            await asyncio.sleep(0)
            first = lookup(n)  # synchronous call from inside a coroutine
            await asyncio.sleep(0)
            return first + lookup(n + 1)

        self.assertEqual(await spawn_greenlet(view_like, 1), 101 + 102)

    async def test_asyncio_timeout_inside_the_bridge(self):
        @synchronize
        async def slow():
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(10)
            except TimeoutError:
                return "timed out"
            return "not timed out"

        self.assertEqual(await spawn_greenlet(slow), "timed out")

    async def test_current_task_is_the_callers(self):
        @synchronize
        async def which_task():
            return asyncio.current_task()

        task = asyncio.ensure_future(spawn_greenlet(which_task))
        self.assertIs(await task, task)

    async def test_futures_and_tasks_can_be_awaited(self):
        @synchronize
        async def gather_some():
            inner = asyncio.ensure_future(asyncio.sleep(0.001, result="task"))
            future = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_later(0.001, future.set_result, "future")
            return [await inner, await future, *await asyncio.gather(add_later.coroutine(1, 1))]

        self.assertEqual(await spawn_greenlet(gather_some), ["task", "future", 2])


class CancellationTest(unittest.IsolatedAsyncioTestCase):
    async def test_cancel_reaches_the_coroutine_and_unwinds_the_greenlet(self):
        events = []

        @synchronize
        async def wait_forever():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                events.append("coroutine cancelled")
                raise

        def body():
            try:
                wait_forever()
            finally:
                events.append("greenlet finally")
            events.append("not reached")

        task = asyncio.ensure_future(spawn_greenlet(body))
        await asyncio.sleep(0.01)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertEqual(events, ["coroutine cancelled", "greenlet finally"])

    async def test_cancelled_greenlet_can_clean_up_with_more_awaits(self):
        events = []

        def body():
            try:
                add_later(0, 0)
                wait_long()
            finally:
                # Cleanup that itself waits on the loop still works after the cancellation.
                events.append(add_later(20, 22))

        @synchronize
        async def wait_long():
            await asyncio.sleep(3600)

        task = asyncio.ensure_future(spawn_greenlet(body))
        await asyncio.sleep(0.02)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertEqual(events, [42])


async def _plain(make: Callable[[], Awaitable[Any]]) -> Any:
    return await make()


async def _bridged(make: Callable[[], Awaitable[Any]]) -> Any:
    return await spawn_greenlet(lambda: run_awaitable(make()))


class CancellationLikeAsyncioTest(unittest.IsolatedAsyncioTestCase):
    """The bridge's coroutine sees what a plain asyncio task's coroutine would, side by side."""

    async def outcome(self, runner: Callable, scenario: Callable) -> tuple[str, Any]:
        try:
            return "result", await scenario(runner)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            return "cancelled", None

    async def both(self, scenario: Callable) -> None:
        plain = await self.outcome(_plain, scenario)
        bridged = await self.outcome(_bridged, scenario)
        self.assertEqual(bridged, plain)

    async def test_cancel_after_the_future_finished_before_resuming(self) -> None:
        """The cancellation lands between the future's result and the task's next step."""
        seen: dict[str, list[str]] = {}

        async def scenario(runner: Callable) -> Any:
            future = asyncio.get_running_loop().create_future()
            log = seen.setdefault(runner.__name__, [])

            async def waits() -> Any:
                try:
                    return await future
                except asyncio.CancelledError:
                    log.append("coroutine saw CancelledError")
                    raise

            task = asyncio.ensure_future(runner(waits))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            future.set_result("late")
            task.cancel()
            try:
                return await task
            finally:
                log.append(f"cancelling={task.cancelling()}")

        await self.both(scenario)
        self.assertEqual(seen["_plain"], ["coroutine saw CancelledError", "cancelling=1"])
        self.assertEqual(seen["_bridged"], seen["_plain"])

    async def test_cancel_while_waiting(self) -> None:
        async def scenario(runner: Callable) -> Any:
            async def sleeps() -> Any:
                await asyncio.sleep(3600)

            task = asyncio.ensure_future(runner(sleeps))
            await asyncio.sleep(0.01)
            task.cancel()
            return await task

        await self.both(scenario)

    async def test_a_coroutine_that_swallows_the_cancellation_returns(self) -> None:
        async def scenario(runner: Callable) -> Any:
            async def swallows() -> Any:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    return "kept going"

            task = asyncio.ensure_future(runner(swallows))
            await asyncio.sleep(0.01)
            task.cancel()
            return await task

        await self.both(scenario)

    async def test_closing_a_suspended_greenlet_runs_the_coroutines_finally(self) -> None:
        """Closing a pending coroutine runs its finally blocks; so does closing the greenlet
        driving one (collected while suspended, say), and it ends with GreenletExit."""
        loop = asyncio.get_running_loop()
        futures = {"plain": loop.create_future(), "bridged": loop.create_future()}
        events: list[str] = []

        async def waits(name: str) -> None:
            try:
                await futures[name]
            finally:
                events.append(f"{name} finally")

        plain = waits("plain")
        plain.send(None)
        plain.close()

        child = BridgeGreenlet(lambda: run_awaitable(waits("bridged")))
        child.switch()  # now suspended, waiting on the future
        ended = child.throw()  # what greenlet does to a greenlet collected while suspended
        self.assertIsInstance(ended, greenlet.GreenletExit)
        self.assertTrue(child.dead)
        self.assertEqual(events, ["plain finally", "bridged finally"])
        self.assertTrue(futures["bridged"].cancelled(), "the future it waited on is cancelled")


class ExecutorTest(unittest.IsolatedAsyncioTestCase):
    async def test_use_executor_runs_in_another_thread(self):
        loop_thread = threading.get_ident()

        @use_executor
        def blocking(x):
            return threading.get_ident(), x * 2

        ident, value = await blocking(21)
        self.assertEqual(value, 42)
        self.assertNotEqual(ident, loop_thread)

    async def test_executor_thread_can_call_synchronized_coroutines(self):
        loop_thread = threading.get_ident()
        seen = []

        @synchronize
        async def where_am_i():
            return threading.get_ident()

        def blocking():
            seen.append(threading.get_ident())
            return where_am_i()

        self.assertEqual(await run_in_executor(None, blocking), loop_thread)
        self.assertNotEqual(seen[0], loop_thread)

    async def test_executor_exception_propagates(self):
        @use_executor
        def broken():
            raise Boom("in a thread")

        with self.assertRaises(Boom):
            await broken()

    async def test_greenlet_waiting_on_executor(self):
        @use_executor
        def blocking(x):
            return x + 1

        def body():
            return synchronize(blocking)(1)

        self.assertEqual(await spawn_greenlet(body), 2)
