"""What an uploaded file is served as: an image only if Pillow decodes it as PNG, JPEG, GIF or
WebP, whatever its name or the type its sender claimed; anything else is a file to download.

Blocking work (decoding, re-encoding, thumbnails): ``prepare`` is run in a thread, never on
the event loop. An image is re-encoded without its metadata (EXIF, and with it a camera's GPS
position; text chunks), turned upright first as its EXIF orientation said; a GIF (which has no
EXIF) is kept as sent, its animation with it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

__all__ = [
    "IMAGE_TYPES",
    "ATTACHMENT_TYPE",
    "THUMB_MAX",
    "MAX_PIXELS",
    "Prepared",
    "prepare",
    "decode_image",
]

# Pillow's format name -> the type an image is served as.
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
ATTACHMENT_TYPE = "application/octet-stream"
# A thumbnail's longest side, in pixels.
THUMB_MAX = 400
# Larger images are files: a decompression bomb is a few kB that decode to gigabytes, and a
# 7000 x 7000 PNG of 207 kB took 7 s and 822 MB to decode, turn and re-encode. 16 million
# pixels take a phone's usual photo (12 MP) and about a third of that.
MAX_PIXELS = 16_000_000


@dataclass(frozen=True)
class Prepared:
    """An upload as it is stored: its bytes and type; an image's size and thumbnail."""

    data: bytes
    type: str
    width: int | None = None
    height: int | None = None
    thumb: bytes | None = None
    thumb_type: str | None = None

    @property
    def is_image(self) -> bool:
        return self.width is not None


def prepare(data: bytes) -> Prepared:
    """``data`` as it will be stored and served (blocking: run it in a thread)."""
    image = decode_image(data)
    if image is None:
        return Prepared(data, ATTACHMENT_TYPE)
    try:
        return _prepared_image(image, data)
    # Pillow raises many kinds of errors on crafted files (OSError, ValueError, struct.error,
    # IndexError...): a file it cannot re-encode is served as a file, never as an image.
    except Exception:  # noqa: BLE001
        return Prepared(data, ATTACHMENT_TYPE)
    finally:
        image.close()


def decode_image(data: bytes, reduce_to: tuple[int, int] | None = None) -> Image.Image | None:
    """``data`` decoded whole as a PNG, JPEG, GIF or WebP of at most ``MAX_PIXELS``, or None
    (blocking: run it in a thread; the caller closes the image). ``reduce_to``: a JPEG is
    decoded at the smallest scale at least that large (far less work for a small result)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(IMAGE_TYPES))
            if image.width * image.height > MAX_PIXELS or not image.width or not image.height:
                image.close()
                return None
            if reduce_to is not None and image.format == "JPEG":
                image.draft("RGB", reduce_to)
            image.load()  # the whole image decodes, not only its header
            return image
    # As in ``prepare``: whatever the decoder raises on a crafted file, it is not an image.
    except Exception:  # noqa: BLE001
        return None


def _prepared_image(image: Image.Image, data: bytes) -> Prepared:
    kind = image.format or ""
    animated = bool(getattr(image, "is_animated", False))
    if kind == "GIF":
        stored, upright = data, image
    elif animated:
        # Frames re-encoded as they are (an animation's frames carry no orientation).
        out = io.BytesIO()
        image.save(out, kind, save_all=True, exif=b"")
        stored, upright = out.getvalue(), image
    else:
        upright = ImageOps.exif_transpose(image) or image
        stored = _encoded(upright, kind, image.info)
    width, height = upright.size
    thumb, thumb_type = _thumbnail(upright)
    return Prepared(stored, IMAGE_TYPES[kind], width, height, thumb, thumb_type)


def _encoded(image: Image.Image, kind: str, info: dict[Any, Any]) -> bytes:
    out = io.BytesIO()
    options: dict[str, Any] = {"exif": b""}
    if info.get("icc_profile"):
        options["icc_profile"] = info["icc_profile"]  # colours, not metadata about anyone
    if kind == "JPEG":
        options["quality"] = 90
    elif kind == "WEBP":
        options["lossless"] = bool(info.get("lossless"))
        options["quality"] = 90
    image.save(out, kind, **options)
    return out.getvalue()


def _thumbnail(image: Image.Image) -> tuple[bytes, str]:
    """At most ``THUMB_MAX`` pixels a side (the first frame of an animation): a JPEG, or a
    PNG when the image may be transparent."""
    if getattr(image, "is_animated", False):
        image.seek(0)
    small = image.copy()
    small.thumbnail((THUMB_MAX, THUMB_MAX))
    out = io.BytesIO()
    if small.mode in ("RGBA", "LA", "P", "PA") or "transparency" in small.info:
        small.convert("RGBA").save(out, "PNG")
        return out.getvalue(), "image/png"
    small.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue(), "image/jpeg"
