"""Thumbnails from the directory's ``thumbnailPhoto`` / ``jpegPhoto``: pure, bounded, re-encoded.

A photo does not belong in the SCIM body (a base64 ``photos[thumbnail]`` would bloat every list
response and every push, and move the content hash on each re-encode). It belongs in a small
table ``user_photo(user_id, content_type, data, source_hash, ...)`` written by the sync and served
at ``/profiles/{id}/photo``; the profile's ``photo`` then carries that URL. This module is the
pure part: pick the entry's photo, check it, and make the thumbnail. The ``source_hash`` is of
the directory's bytes, so an unchanged photo is recognised without decoding it.

Decoding untrusted images: only JPEG and PNG are accepted, Pillow's decompression-bomb limit is
lowered to what a directory photo can reasonably be, the EXIF orientation is applied and all
metadata (EXIF with GPS, comments) is dropped by re-encoding.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from syncsvc.domain import LdapEntry

__all__ = ["PHOTO_ATTRIBUTES", "PhotoRejected", "Thumbnail", "make_thumbnail", "photo_of",
           "source_hash"]

PHOTO_ATTRIBUTES: Final = ("thumbnailPhoto", "jpegPhoto")
"""Where a directory keeps a user's photo, in order of preference (AD's is small already)."""

MAX_SOURCE_BYTES: Final = 5 * 1024 * 1024
MAX_SOURCE_PIXELS: Final = 40_000_000  # e.g. 8000 x 5000; Pillow's own limit is ~89 M
_FORMATS: Final = ("JPEG", "PNG")


class PhotoRejected(ValueError):
    """The directory's photo cannot be used; the message says why (a problem of the run)."""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    content_type: str
    data: bytes
    width: int
    height: int
    source_hash: str


def source_hash(data: bytes) -> str:
    """SHA-256 of the directory's bytes: equal photo, equal hash, nothing re-encoded."""
    return hashlib.sha256(data).hexdigest()


def photo_of(entry: LdapEntry, attributes: tuple[str, ...] = PHOTO_ATTRIBUTES) -> bytes | None:
    """The first non-empty binary value of the first photo attribute the entry has."""
    for name in attributes:
        for value in entry.get(name):
            if isinstance(value, bytes) and value:
                return value
    return None


def make_thumbnail(data: bytes, *, size: int = 256, quality: int = 85) -> Thumbnail:
    """A JPEG at most ``size`` x ``size`` (aspect kept, never enlarged), without metadata.

    Raises:
        PhotoRejected: too large, not an image, not JPEG/PNG, or too many pixels.
    """
    if len(data) > MAX_SOURCE_BYTES:
        raise PhotoRejected(f"photo of {len(data)} bytes, more than {MAX_SOURCE_BYTES}")
    try:
        with warnings.catch_warnings():
            # Over the limit Pillow warns first and raises only at twice the limit: raise at once.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as image:
                if image.width * image.height > MAX_SOURCE_PIXELS:
                    raise PhotoRejected(f"photo of {image.width}x{image.height} pixels is too large")
                image.load()
                shown = ImageOps.exif_transpose(image)
                shown.thumbnail((size, size), Image.Resampling.LANCZOS)
                if shown.mode not in ("RGB", "L"):
                    shown = _flatten(shown)
                out = io.BytesIO()
                shown.save(out, format="JPEG", quality=quality, optimize=True)
    except (UnidentifiedImageError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise PhotoRejected(f"not a usable JPEG or PNG photo: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt image data
        if isinstance(exc, PhotoRejected):
            raise
        raise PhotoRejected(f"broken photo: {exc}") from None
    return Thumbnail(content_type="image/jpeg", data=out.getvalue(), width=shown.width,
                     height=shown.height, source_hash=source_hash(data))


def _flatten(image: Image.Image) -> Image.Image:
    """RGBA / palette images onto white: JPEG has no transparency."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background
