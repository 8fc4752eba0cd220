"""A picture made into an avatar: decoded with Pillow (PNG, JPEG, GIF or WebP only, never a
decompression bomb: ``uploads.images.decode_image``), turned upright as its EXIF said,
cropped square around its centre, scaled to ``AVATAR_SIZE`` and re-encoded as WebP (PNG when
this Pillow has no WebP) with no metadata at all.

``make_avatar`` blocks: run it in a thread, never on the event loop.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, features

from ..uploads.images import decode_image

__all__ = ["AVATAR_SIZE", "Avatar", "make_avatar"]

# An avatar's side, in pixels: shown at 20 to 64 CSS pixels, sharp on a 2x screen.
AVATAR_SIZE = 128
_WEBP = features.check("webp")


@dataclass(frozen=True)
class Avatar:
    """An avatar as it is stored and served."""

    data: bytes
    type: str


def make_avatar(data: bytes) -> Avatar | None:
    """``data`` as an avatar, or None when it is not an image we accept (blocking)."""
    image = decode_image(data, reduce_to=(2 * AVATAR_SIZE, 2 * AVATAR_SIZE))
    if image is None:
        return None
    try:
        return _square(image)
    # Pillow raises many kinds of errors on crafted files (OSError, ValueError, struct.error,
    # IndexError...): a picture it cannot turn, crop or encode is not an image we accept.
    except Exception:  # noqa: BLE001
        return None
    finally:
        image.close()


def _square(image: Image.Image) -> Avatar:
    if getattr(image, "is_animated", False):
        image.seek(0)  # an animation's first frame
    upright = ImageOps.exif_transpose(image) or image
    transparent = upright.mode in ("RGBA", "LA", "P", "PA") or "transparency" in upright.info
    pixels = upright.convert("RGBA" if transparent else "RGB")
    square = ImageOps.fit(pixels, (AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS)
    # The pixels only: no EXIF, colour profile or text chunk travels with them (Pillow copies
    # ``info`` from image to image, and some encoders write what it holds).
    square.info = {}
    out = io.BytesIO()
    if _WEBP:
        square.save(out, "WEBP", quality=85, method=4)
        return Avatar(out.getvalue(), "image/webp")
    square.save(out, "PNG", optimize=True)
    return Avatar(out.getvalue(), "image/png")
