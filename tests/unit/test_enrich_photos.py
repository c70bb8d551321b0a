"""Thumbnails from jpegPhoto / thumbnailPhoto: picked, checked, resized, stripped."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from syncsvc.domain import LdapEntry
from syncsvc.enrich.photos import PhotoRejected, make_thumbnail, photo_of, source_hash


def image_bytes(size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB", **save: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 10, 10) if mode == "RGB" else None).save(out, format=fmt, **save)
    return out.getvalue()


class TestPhotoOf:
    def test_thumbnail_photo_is_preferred_over_jpeg_photo(self) -> None:
        """AD's thumbnailPhoto first, then jpegPhoto; text values are not photos."""
        entry = LdapEntry("uid=a", "a", {"jpegphoto": (b"J",), "thumbnailphoto": (b"T",)})
        assert b"T" == photo_of(entry)
        assert b"J" == photo_of(LdapEntry("uid=a", "a", {"jpegphoto": ("text", b"J")}))
        assert photo_of(LdapEntry("uid=a", "a", {})) is None


class TestMakeThumbnail:
    def test_large_photos_shrink_keeping_the_aspect(self) -> None:
        """1000x500 -> 256x128 JPEG; the hash is of the source bytes."""
        data = image_bytes((1000, 500))
        thumb = make_thumbnail(data)
        assert ("image/jpeg", 256, 128) == (thumb.content_type, thumb.width, thumb.height)
        assert source_hash(data) == thumb.source_hash
        assert (256, 128) == Image.open(io.BytesIO(thumb.data)).size

    def test_small_photos_are_not_enlarged(self) -> None:
        """A 4x4 photo stays 4x4."""
        thumb = make_thumbnail(image_bytes((4, 4)))
        assert (4, 4) == (thumb.width, thumb.height)

    def test_transparent_png_becomes_jpeg(self) -> None:
        """RGBA is flattened onto white."""
        thumb = make_thumbnail(image_bytes((10, 10), "PNG", "RGBA"))
        assert "JPEG" == Image.open(io.BytesIO(thumb.data)).format

    def test_exif_is_dropped_and_orientation_applied(self) -> None:
        """A photo rotated by EXIF (orientation 6) comes out upright and without EXIF."""
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90° clockwise when shown
        exif[0x010F] = "SecretCam"
        thumb = make_thumbnail(image_bytes((40, 20), exif=exif.tobytes()))
        shown = Image.open(io.BytesIO(thumb.data))
        assert (20, 40) == shown.size
        assert 0 == len(shown.getexif())

    @pytest.mark.parametrize("data", [b"not an image", b"GIF89a" + b"\0" * 20,
                                      image_bytes((10, 10))[:40]])
    def test_bad_photos_are_rejected_with_a_reason(self, data: bytes) -> None:
        """Garbage, other formats and truncated files raise PhotoRejected, nothing else."""
        with pytest.raises(PhotoRejected):
            make_thumbnail(data)

    def test_decompression_bombs_are_refused(self) -> None:
        """A small file claiming a huge image is refused before decoding."""
        with pytest.raises(PhotoRejected, match="too large|usable"):
            make_thumbnail(image_bytes((9000, 5000), "PNG", "L"))
