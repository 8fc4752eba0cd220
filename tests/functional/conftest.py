"""Servers that classes share (``share_servers`` in tests/functional/chatservers.py,
``share_across_classes`` in servertest.py) run until this folder's last test, then stop,
gracefully: a server killed at exit would lose what coverage measured in it.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from .chatservers import close_shared_servers
from .servertest import close_shared_server

_FOLDER = Path(__file__).parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    yield  # the test's teardown, and its class's when it was the class's last
    if nextitem is None or _FOLDER not in Path(nextitem.path).parents:
        close_shared_servers()
        close_shared_server()
