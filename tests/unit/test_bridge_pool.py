"""The bridge's greenlet pool: requests reuse idle greenlets, and nothing of one job reaches
the next (its context, its result, its exception), however the job ended."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import traceback
import unittest
import weakref

import greenlet

from aiotutorial.aio import helpers
from aiotutorial.aio.helpers import drive_in_steps, is_bridge_greenlet, spawn_greenlet, synchronize

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


class Boom(Exception):
    pass


@synchronize
async def pause(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "paused"


def current_greenlet() -> greenlet.greenlet:
    return greenlet.getcurrent()


def fails() -> None:
    pause(0)
    raise Boom("raised by the job")


class GreenletPoolTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self) -> None:
        helpers._idle_greenlets().clear()

    async def test_one_job_after_another_runs_in_the_same_greenlet(self) -> None:
        first = await spawn_greenlet(current_greenlet)
        second = await spawn_greenlet(current_greenlet)
        self.assertIs(first, second)
        self.assertTrue(await spawn_greenlet(is_bridge_greenlet))
        self.assertEqual(helpers._idle_greenlets(), [first])

    async def test_an_exception_comes_back_with_its_frames_and_the_greenlet_is_reused(self) -> None:
        used = await spawn_greenlet(current_greenlet)
        try:
            await spawn_greenlet(fails)
        except Boom as raised:
            frames = [frame.name for frame in traceback.extract_tb(raised.__traceback__)]
        else:
            self.fail("no exception")
        self.assertIn("fails", frames)  # where the job raised it, in the greenlet
        self.assertIs(await spawn_greenlet(current_greenlet), used)
        # The greenlet holds nothing of the failed job while idle.
        self.assertIsNone(used.gr_context)

    async def test_an_idle_greenlet_keeps_nothing_of_its_last_job(self) -> None:
        class Answer:
            pass

        answer = await spawn_greenlet(Answer)
        kept = weakref.ref(answer)
        del answer
        gc.collect()
        self.assertIsNone(kept(), "the answer lives on in the idle greenlet")

    async def test_each_job_runs_in_its_callers_context(self) -> None:
        async def caller(value: str) -> str:
            seen.set(value)
            return await spawn_greenlet(lambda: (pause(0.01), seen.get())[1])

        results = await asyncio.gather(caller("a"), caller("b"), caller("c"))
        self.assertEqual(results, ["a", "b", "c"])
        # A job that sets the variable changes its caller's context, not the next job's.

        async def sets() -> str:
            return await spawn_greenlet(lambda: seen.set("set by a job") and "")

        await asyncio.create_task(sets())
        self.assertEqual(await asyncio.create_task(spawn_greenlet(seen.get)), "unset")

    async def test_a_cancelled_job_unwinds_and_its_greenlet_serves_again(self) -> None:
        unwound = []

        def waits() -> None:
            try:
                pause(10)
            finally:
                unwound.append(greenlet.getcurrent())

        task = asyncio.create_task(spawn_greenlet(waits))
        await asyncio.sleep(0.01)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertEqual(len(unwound), 1)
        self.assertIs(await spawn_greenlet(current_greenlet), unwound[0])
        self.assertEqual(await spawn_greenlet(pause, 0), "paused")

    async def test_the_pool_keeps_at_most_its_size(self) -> None:
        many = helpers.POOL_SIZE + 20
        used = await asyncio.gather(
            *(spawn_greenlet(lambda: (pause(0.01), greenlet.getcurrent())[1]) for _ in range(many))
        )
        self.assertEqual(len({id(g) for g in used}), many, "concurrent jobs: one greenlet each")
        idle = helpers._idle_greenlets()
        self.assertEqual(len(idle), helpers.POOL_SIZE)
        self.assertEqual(sum(1 for g in used if g.dead), 20, "the ones past the size ended")
        self.assertTrue(all(not g.dead for g in idle))

    async def test_a_spawn_inside_a_bridge_greenlet_gets_a_greenlet_of_its_own(self) -> None:
        @synchronize
        async def inner() -> tuple[greenlet.greenlet, greenlet.greenlet]:
            child = await spawn_greenlet(lambda: (pause(0), greenlet.getcurrent())[1])
            return child, greenlet.getcurrent()

        child, outer = await spawn_greenlet(inner)
        self.assertIsNot(child, outer)
        self.assertIs(child.parent, outer)
        self.assertTrue(child.dead, "not pooled: it ended with its job")
        self.assertEqual(helpers._idle_greenlets(), [outer])

    async def test_a_spawn_that_waits_across_steps_goes_on_where_its_caller_goes_on(self) -> None:
        """A websocket view's first step runs in a pooled greenlet and spawns one that waits;
        its next steps run elsewhere (the loop's greenlet, once the request is let go) while
        the pooled greenlet serves other requests: the spawned one resumes its caller there."""
        steps = iter([True])

        async def view() -> str:
            first = await spawn_greenlet(lambda: pause(0.01))
            second = await spawn_greenlet(lambda: pause(0.01))
            return f"{first} {second}"

        async def other_requests() -> None:
            for _ in range(5):
                await spawn_greenlet(pause, 0.002)

        result, _ = await asyncio.gather(
            drive_in_steps(view(), bridged=lambda: next(steps, False)), other_requests()
        )
        self.assertEqual(result, "paused paused")


if __name__ == "__main__":
    unittest.main()
