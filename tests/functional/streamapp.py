"""A plain WSGI application for the bridge's streaming tests, served by the real worker:
``gunicorn tests.functional.streamapp:app -k aiotutorial.aio.gunicorn.AsyncGunicornWorker``.

``GET /stream?mb=N`` answers N MiB generated as it is sent (the same 1 MiB block again and
again); ``/rss`` answers the worker's resident memory in KiB, so a test can compare it before
and after a long download.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

BLOCK = b"x" * (1024 * 1024)


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def app(environ: dict[str, Any], start_response: Callable) -> Iterator[bytes] | list[bytes]:
    path = environ["PATH_INFO"]
    if path == "/rss":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(_rss_kib()).encode()]
    if path == "/stream":
        mebibytes = int(parse_qs(environ["QUERY_STRING"]).get("mb", ["1"])[0])

        def body() -> Iterator[bytes]:
            # start_response on the first iteration, as PEP 3333 allows.
            start_response(
                "200 OK",
                [
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", str(mebibytes << 20)),
                ],
            )
            for _ in range(mebibytes):
                yield BLOCK

        return body()
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not here"]
