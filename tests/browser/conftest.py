"""The browser classes share one Chromium and one chat server (tests/browser/chromium.py):
they are closed after this folder's last test, before the next folder's tests run.

Playwright's sync API keeps an event loop of its own in this thread while it runs, and the
functional tests that follow run theirs (``IsolatedAsyncioTestCase``) in the same thread.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from .chromium import close_shared

_FOLDER = Path(__file__).parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    yield  # the test's teardown, and its class's when it was the class's last
    if nextitem is None or _FOLDER not in Path(nextitem.path).parents:
        close_shared()
