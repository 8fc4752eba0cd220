"""Writing a text frame straight to a socket's transport: the one place that reaches into aiohttp's
private attributes (its writer, transport and protocol), so that an upgrade of aiohttp that renames
them breaks here alone (``tests/functional/test_websocket_memory.py`` checks the frames byte for
byte against aiohttp's writer).

A broadcast to many idle sockets then makes no task and no coroutine switch per socket, which
is most of what a delivery costs; the frame of a broadcast is built once for all its sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["write_now", "text_frame"]


def write_now(socket: web.WebSocketResponse, data: bytes) -> Awaitable[None] | None:
    """Send ``data`` (UTF-8 text, already encoded) as a text frame without a task when it can
    finish at once, as it does whenever the socket's buffer has room: None once the frame is
    written; else an awaitable that finishes the send (it waits for the client to read)."""
    writer = getattr(socket, "_writer", None)
    transport = getattr(writer, "transport", None)
    if (
        transport is not None
        and not getattr(writer, "_closing", True)
        and not getattr(getattr(writer, "protocol", None), "_paused", True)
        and not transport.is_closing()
    ):
        # The common case: nothing waits to be written, so the frame goes straight to the
        # transport. (aiohttp's send_frame would make two coroutines and the header anew for
        # each socket.)
        transport.write(text_frame(data))
        return None
    sending = socket.send_frame(data, WSMsgType.TEXT)
    try:
        waiting = sending.send(None)
    except StopIteration:
        return None
    except BaseException:
        sending.close()
        raise
    return _finish(sending, waiting)


_last_frame: tuple[bytes, bytes] = (b"", b"\x81\x00")


def text_frame(payload: bytes) -> bytes:
    """A whole unmasked text frame (RFC 6455 5.2) of ``payload``; the last one is kept, so a
    broadcast handing the same bytes to every socket builds its frame once."""
    global _last_frame
    last, frame = _last_frame
    if payload is last:
        return frame
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 65536:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    frame = head + payload
    _last_frame = (payload, frame)
    return frame


async def _finish(sending: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Drive a coroutine that was started by hand and is waiting on ``waiting`` (a future),
    as a task would, to its end."""
    while True:
        try:
            if waiting is None:  # a bare yield: give the loop one turn
                await asyncio.sleep(0)
            else:
                # A future yielded to its task is marked as blocking; the task unmarks it
                # before it waits, or awaiting it again fails ("await wasn't used with future").
                waiting._asyncio_future_blocking = False
                await waiting
        except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as a task does
            try:
                waiting = sending.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = sending.send(None)
            except StopIteration:
                return
