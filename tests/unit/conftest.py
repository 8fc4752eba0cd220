"""What makes a unit test: it touches nothing outside its process, and this file checks it.

While a test of this folder runs (its class's set-up included), a socket that connects or
binds, a subprocess and a PostgreSQL connection all raise ``OutsideTheProcess``: a test that
needs a server, the database or a program belongs in tests/functional/. What asyncio makes for
itself (its loop's socket pair) is left alone.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Callable, Generator, Iterator
from typing import Any
from unittest import mock

import psycopg2
import pytest


class OutsideTheProcess(AssertionError):
    """A unit test reached for something outside its process."""


def _refuse(what: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OutsideTheProcess(f"a unit test {what}: it belongs in tests/functional/")

    return refuse


@contextlib.contextmanager
def _inside_the_process() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for name in ("connect", "connect_ex", "bind"):
            stack.enter_context(
                mock.patch.object(socket.socket, name, _refuse(f"called socket.{name}"))
            )
        stack.enter_context(
            mock.patch.object(subprocess.Popen, "__init__", _refuse("started a program"))
        )
        stack.enter_context(
            mock.patch.object(psycopg2, "connect", _refuse("connected to PostgreSQL"))
        )
        yield


# The phases of a test of this folder (pytest asks a folder's conftest about its items only):
# the set-up runs its class's setUpClass, the tear-down its tearDownClass.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator:
    with _inside_the_process():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator:
    with _inside_the_process():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator:
    with _inside_the_process():
        yield
