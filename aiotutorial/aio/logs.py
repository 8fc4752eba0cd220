"""Log lines in proportion: what clients cause is one INFO line, what we cause an ERROR.

aiohttp logs a malformed request line, a body it cannot decode or a client hanging up in the
middle of a body as ``Error handling request`` at ERROR with a traceback: thousands of them
from one fuzzer, burying the tracebacks of our own bugs. ``ClientErrorFilter`` turns the
records whose exception is the client's doing into one INFO line without a traceback.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

__all__ = ["ClientErrorFilter", "install_client_error_filter", "CLIENT_ERRORS"]

# Exceptions that say something about the client, not about this server.
CLIENT_ERRORS = (HttpProcessingError, RequestPayloadError, ConnectionError)
# aiohttp's own loggers, and gunicorn's error log, which aiohttp's gunicorn worker hands the
# server as its logger.
_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.access", "gunicorn.error")


class ClientErrorFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, CLIENT_ERRORS) and record.levelno > logging.INFO:
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})".replace("\n", " ")
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.INFO
            record.levelname = logging.getLevelName(logging.INFO)
        return True


def install_client_error_filter() -> None:
    """Put the filter on aiohttp's loggers (once)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
            logger.addFilter(ClientErrorFilter())
