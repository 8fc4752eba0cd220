"""Images and files: ``POST /channels/{name}/uploads`` stores one (multipart, field ``file``,
with the CSRF token; the channel's members, or anyone signed in for a public one), and
``GET /channels/{name}/uploads/{id}`` (``/thumb``: an image's thumbnail) serves it to the
channel's readers: private channels are 404 to everyone else already (traversal).

An upload is served as an image (inline, ``image/<format>``) only if it decoded as one
(``uploads.images``); anything else is ``application/octet-stream`` with
``Content-Disposition: attachment``, and every answer carries ``nosniff`` and a CSP that lets
nothing run, so an HTML file or an SVG never renders in the site's origin.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pyramid.httpexceptions import HTTPCreated, HTTPNotModified, exception_response
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from .. import access
from ..aio.helpers import run_in_executor
from ..chat.attachments import upload_path
from ..resources import Channel
from ..uploads import (
    ATTACHMENT_TYPE,
    QuotaExceeded,
    field_bytes,
    image_work,
    megabytes,
    prepare,
    readable_upload,
    store_upload,
    upload_settings,
)
from .channels import bad_parameter

# What an upload's answer may do in a browser: nothing (no script, no style, no frame of it).
UPLOAD_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
_CACHED_FOR = 3600


def _refused(status: int, error: str, detail: str) -> Exception:
    return exception_response(status, json_body={"error": error, "detail": detail})


def _not_found() -> Exception:
    return _refused(404, "not_found", "No such upload.")


@view_config(
    route_name="channel",
    context=Channel,
    name="uploads",
    request_method="POST",
    permission="chat",
)
async def upload_file(context: Channel, request: Request) -> Any:
    """201 ``{"upload": {...}}``; 400 without a file or with an empty one; 413 over the size
    limit or the daily quota (nothing stored)."""
    if request.subpath:
        raise _not_found()
    if request.content_type != "multipart/form-data":
        raise bad_parameter('Send the file as multipart/form-data, in the field "file".')
    fields = request.POST.getall("file")
    if len(fields) != 1 or not hasattr(fields[0], "file"):
        raise bad_parameter('Send one file in the multipart field "file".')
    field = fields[0]
    limits = upload_settings(request.registry)
    data = await run_in_executor(None, field_bytes, field)
    if not data:
        raise bad_parameter("The file is empty.")
    if len(data) > limits.max_size:
        raise _refused(413, "too_large", f"A file may have at most {megabytes(limits.max_size)}.")
    prepared = await image_work(prepare, data)
    try:
        async with request.db.transaction() as conn:
            row = await store_upload(
                conn,
                limits.blobs,
                channel=context.name,
                user=request.identity.username,
                name=getattr(field, "filename", None),
                prepared=prepared,
                daily_quota=limits.daily_quota,
            )
    except QuotaExceeded as exceeded:
        left = max(0, limits.daily_quota - exceeded.used)
        raise _refused(
            413,
            "quota_exceeded",
            f"You may upload {megabytes(limits.daily_quota)} a day; "
            f"{megabytes(left)} are left for now.",
        ) from None
    return HTTPCreated(json_body={"upload": describe(row)})


def describe(row: Any) -> dict[str, Any]:
    """An upload as the protocol shows it (as ``chat.attachments.UPLOADS_OF`` does too)."""
    found = {
        "id": row["id"],
        "url": upload_path(row["channel"], row["id"]),
        "name": row["name"],
        "type": row["type"],
        "size": row["size"],
    }
    if row["width"] is not None:
        found["width"] = row["width"]
        found["height"] = row["height"]
    if row["thumb_key"] is not None:
        found["thumb"] = upload_path(row["channel"], row["id"], thumb=True)
    return found


def content_disposition(kind: str, name: str) -> str:
    """``kind; filename="..."; filename*=UTF-8''...`` (RFC 6266 and 5987): an ASCII fallback
    without quotes or backslashes, and the name itself percent-encoded."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@view_config(
    route_name="channel",
    context=Channel,
    name="uploads",
    request_method=("GET", "HEAD"),
    permission="view",
)
async def serve_upload(context: Channel, request: Request) -> Any:
    subpath = request.subpath
    if not 1 <= len(subpath) <= 2 or (len(subpath) == 2 and subpath[1] != "thumb"):
        raise _not_found()
    if not subpath[0].isascii() or not subpath[0].isdigit() or len(subpath[0]) > 18:
        raise _not_found()
    thumb = len(subpath) == 2
    identity = request.identity
    reader = identity.username if identity is not None else None
    row = await readable_upload(request.db, context.name, int(subpath[0]), reader)
    if row is None or (thumb and row.thumb_key is None):
        raise _not_found()
    etag = f"{row.id}-{'thumb' if thumb else 'file'}"
    # Shared caches may keep a public channel's files that a message carries; a private
    # channel's are the reader's alone, and a file no message carries (not sent yet, or its
    # message deleted) is its uploader's only, and not kept at all.
    if not row.carried:
        cache = "private, no-cache"
    elif context.access.kind == access.PUBLIC:
        cache = f"public, max-age={_CACHED_FOR}"
    else:
        cache = f"private, max-age={_CACHED_FOR}"
    headers = {
        "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": UPLOAD_CSP,
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if etag in request.if_none_match:
        response = HTTPNotModified(headers=headers)
        response.etag = etag
        return response
    blobs = upload_settings(request.registry).blobs
    data = await blobs.get(request.db, row.thumb_key if thumb else row.key)
    if data is None:
        raise _not_found()
    kind = row.thumb_type if thumb else row.type
    response = Response(body=data, headers=headers)
    response.content_type = kind
    response.etag = etag
    if kind == ATTACHMENT_TYPE:
        response.headers["Content-Disposition"] = content_disposition("attachment", row.name)
    else:
        response.headers["Content-Disposition"] = content_disposition("inline", row.name)
    return response


def includeme(config: Any) -> None:
    config.include("aiotutorial.uploads")
    config.scan(__name__)
