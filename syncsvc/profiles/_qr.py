"""QR codes (segno): the public profile URL when the user opted in, else the compact vCard."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Final

import segno

__all__ = ["QR_BORDER", "QR_ERROR", "QR_SCALE", "QrCode", "qr_code"]

QR_ERROR: Final = "m"  # ~15% of the symbol may be damaged; segno raises it when data allows
QR_SCALE: Final = 8  # pixels per module in the PNG
QR_BORDER: Final = 4  # the quiet zone ISO/IEC 18004 asks for, in modules


@dataclass(frozen=True, slots=True)
class QrCode:
    """One QR symbol and its renderings."""

    payload: str
    symbol: segno.QRCode

    def svg(self, *, scale: int = 4) -> bytes:
        """A standalone SVG document (no XML declaration issues: segno writes UTF-8)."""
        out = io.BytesIO()
        self.symbol.save(out, kind="svg", scale=scale, border=QR_BORDER, title="QR code",
                         xmldecl=True, svgns=True)
        return out.getvalue()

    def svg_inline(self, *, scale: int = 4) -> str:
        """An ``<svg>`` element to embed in HTML (no XML declaration, no fixed namespace)."""
        return str(self.symbol.svg_inline(scale=scale, border=QR_BORDER, title="QR code"))

    def png(self, *, scale: int = QR_SCALE) -> bytes:
        out = io.BytesIO()
        self.symbol.save(out, kind="png", scale=scale, border=QR_BORDER)
        return out.getvalue()

    def png_data_uri(self, *, scale: int = 3) -> str:
        """A ``data:image/png;base64,...`` URI, what e-mail clients show most reliably."""
        return "data:image/png;base64," + base64.b64encode(self.png(scale=scale)).decode("ascii")


def qr_code(payload: str) -> QrCode:
    """The QR code of ``payload`` (UTF-8, byte mode; segno picks the smallest version).

    Raises:
        segno.DataOverflowError: the payload does not fit in a version 40 symbol.
    """
    return QrCode(payload, segno.make_qr(payload, error=QR_ERROR, boost_error=True,
                                         encoding="utf-8"))
