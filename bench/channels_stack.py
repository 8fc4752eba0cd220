"""Django Channels as the harness runs it: bench/channels_server.py (uvicorn, one process) on a
Redis server of its own, Debian's ``redis-server`` on a free loopback port.

Each ``ChannelsServer`` starts its ``RedisServer`` first and stops it last: Redis in a
directory of its own under the harness's temporary one, without persistence (no RDB
snapshot, no append-only file), answering ``PING`` when ready. ``channels_missing`` says what
a run lacks (the bench extra's packages, or ``redis-server``) so that the rows can be left
out with a note, as Tornado's are.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import sys

from harness.redis import RedisServer

from .servers import TMP_DIR, Server, free_port

__all__ = ["ChannelsServer", "channels_server", "channels_missing"]

# What bench/channels_server.py imports, from the bench extra (setup.py).
PACKAGES = ("channels", "channels_redis", "django", "uvicorn", "websockets")


class ChannelsServer(Server):
    """bench/channels_server.py and the Redis server its channel layer uses."""

    def __init__(
        self, name: str, *, persist: tuple[str, str] | None, database_url: str | None
    ) -> None:
        self.redis = RedisServer(f"{name}-redis", directory=TMP_DIR)

        def command(port: int) -> list[str]:
            argv = [sys.executable, "-m", "bench.channels_server", "--port", str(port)]
            argv += ["--redis-port", str(self.redis.port)]
            return argv + (["--persist", ":".join(persist)] if persist else [])

        env = {"DATABASE_URL": database_url} if database_url else None
        super().__init__(name, command, port=free_port(), ready_path="/health", env=env)

    def start(self) -> ChannelsServer:
        self.redis.start()
        try:
            super().start()
        except BaseException:
            self.redis.stop()
            raise
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        try:
            return super().stop(sig, timeout)
        finally:
            self.redis.stop()


def channels_server(
    name: str, *, persist: tuple[str, str] | None = None, database_url: str | None = None
) -> ChannelsServer:
    """Django Channels' group broadcast over Redis (saving each message to PostgreSQL first
    with ``persist``, a channel and a user)."""
    return ChannelsServer(name, persist=persist, database_url=database_url)


def channels_missing() -> str | None:
    """What stops the Channels rows: packages of the bench extra or ``redis-server``."""
    lacking = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if shutil.which("redis-server") is None:
        lacking.append("redis-server (Debian's, which make bench installs as root)")
    return ", ".join(lacking) or None
