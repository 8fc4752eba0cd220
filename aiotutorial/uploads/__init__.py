"""Images and files in the chat: what an upload is served as (``images``), where its bytes
live (``storage``), its metadata and quota (``store``), and its settings.

The HTTP routes are ``views/uploads.py``; what a message carries is the chat's
(``chat/attachments.py``).

Settings (``[app:main]``): ``uploads.max_size`` (bytes a file, default 10 MiB) and
``uploads.daily_quota`` (bytes a user may upload in 24 hours, default 100 MiB). The server's
body limit for the upload route is ``aio.max_body_size_by_path`` (aio/wsgi.py): keep it a
little above ``uploads.max_size`` (a multipart body's headers and boundary).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..aio.helpers import run_in_executor
from .images import ATTACHMENT_TYPE, IMAGE_TYPES, THUMB_MAX, Prepared, prepare
from .storage import BlobStore, PostgresBlobStore
from .store import QuotaExceeded, readable_upload, store_upload, stored_name

__all__ = [
    "ATTACHMENT_TYPE",
    "IMAGE_TYPES",
    "THUMB_MAX",
    "Prepared",
    "prepare",
    "BlobStore",
    "PostgresBlobStore",
    "QuotaExceeded",
    "readable_upload",
    "store_upload",
    "stored_name",
    "UploadSettings",
    "upload_settings",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_DAILY_QUOTA",
    "IMAGE_WORK_AT_ONCE",
    "image_work",
    "field_bytes",
    "megabytes",
]

DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_DAILY_QUOTA = 100 * 1024 * 1024
_SETTINGS_KEY = "aiotutorial.uploads"


@dataclass(frozen=True)
class UploadSettings:
    max_size: int
    daily_quota: int
    blobs: BlobStore


# Pillow's work (decoding, turning, re-encoding, thumbnails) a worker does at once: each may
# take hundreds of megabytes and seconds of a core; more wait their turn, off the event loop.
IMAGE_WORK_AT_ONCE = 2
_image_work = asyncio.Semaphore(IMAGE_WORK_AT_ONCE)
T = TypeVar("T")


async def image_work(work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` (Pillow's: blocking) in the executor, at most ``IMAGE_WORK_AT_ONCE``
    of them at a time in this worker (uploads and avatars alike)."""
    async with _image_work:
        return await run_in_executor(None, work, *args)


def upload_settings(registry: Any) -> UploadSettings:
    """The uploads' settings of the app (``includeme`` read them)."""
    found: UploadSettings = registry[_SETTINGS_KEY]
    return found


def includeme(config: Any) -> None:
    settings = config.registry.settings
    config.registry[_SETTINGS_KEY] = UploadSettings(
        max_size=int(settings.get("uploads.max_size", DEFAULT_MAX_SIZE)),
        daily_quota=int(settings.get("uploads.daily_quota", DEFAULT_DAILY_QUOTA)),
        blobs=PostgresBlobStore(),
    )


def megabytes(size: int) -> str:
    """``size`` bytes as a refusal says it (``10.0 MB``)."""
    return f"{size / (1024 * 1024):.1f} MB"


def field_bytes(field: Any) -> bytes:
    """The bytes of a multipart form's file field (blocking: run it in the executor)."""
    field.file.seek(0)
    data: bytes = field.file.read()
    return data
