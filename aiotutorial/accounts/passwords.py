"""Passwords: argon2id hashes, computed in a thread pool of their own.

Hashing runs in a small pool (argon2 is CPU-heavy and releases the GIL), so a burst of log-ins
neither blocks the loop nor starves the pool of synchronous views (``security.hash_threads``,
default cores - 1). A hash made with other parameters verifies and is re-hashed at the next
log-in.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pyramid.registry import Registry

from ..aio.helpers import run_in_executor

__all__ = ["hash_password", "verify_password", "stop_hash_pool"]

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~40 ms a hash here.
# argon2-cffi's default (64 MiB, 3 passes, 4 lanes) took ~300 ms on this 2-core machine, which
# would make 50 concurrent log-ins wait seconds. Hashes made with other parameters verify and
# are re-hashed with these at the next log-in. An encoded hash is ~97 characters.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def _hash_pool(registry: Registry) -> ThreadPoolExecutor:
    pool = registry.get("security.hash_pool")
    if pool is None or registry.get("security.hash_pool_pid") != os.getpid():
        # Leave a core to the event loop: hashing is CPU-bound.
        default = max(1, (os.cpu_count() or 2) - 1)
        threads = int(registry.settings.get("security.hash_threads", default))
        pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="argon2")
        registry["security.hash_pool"] = pool
        registry["security.hash_pool_pid"] = os.getpid()
    return pool


async def stop_hash_pool(registry: Registry) -> None:
    pool = registry.pop("security.hash_pool", None)
    if pool is not None and registry.get("security.hash_pool_pid") == os.getpid():
        pool.shutdown(wait=False, cancel_futures=True)


async def hash_password(registry: Registry, password: str) -> str:
    """An argon2id hash of ``password``, computed off the loop."""
    return await run_in_executor(_hash_pool(registry), _hasher.hash, password)


def _verify(phash: str, password: str) -> tuple[bool, bool]:
    try:
        _hasher.verify(phash, password)
    except (VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(phash)


async def verify_password(
    registry: Registry, phash: str | None, password: str
) -> tuple[bool, bool]:
    """``(matches, needs_rehash)``, computed off the loop.

    Without a hash (an unknown user) a dummy hash is verified all the same, so that the answer
    takes about as long as for a real user with a wrong password.
    """
    if phash is None:
        dummy = registry.get("security.dummy_hash")
        if dummy is None:
            dummy = await hash_password(registry, secrets.token_urlsafe(16))
            registry["security.dummy_hash"] = dummy
        await run_in_executor(_hash_pool(registry), _verify, dummy, password)
        return False, False
    return await run_in_executor(_hash_pool(registry), _verify, phash, password)
