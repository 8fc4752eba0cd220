"""Free loopback ports, and whether a server answers HTTP on one.

``free_port`` lets the kernel pick a port (bind to port 0) and releases it; there is a small
window before the server binds it, which ``ServerProcess.start`` covers by retrying on
"Address already in use". ``http_answers`` is one GET: any HTTP response counts.
"""

from __future__ import annotations

import http.client
import socket

from .paths import HOST

__all__ = ["free_port", "http_answers"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def http_answers(port: int, path: str, timeout: float) -> bool:
    """True when ``GET path`` on ``port`` of HOST gets any HTTP response within ``timeout``."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
