"""Rich profile outputs: vCard business cards, QR codes, e-mail signatures, public profile pages,
and the directory-quality report.

Everything here reads the store; nothing writes it. The profile data itself (the SCIM profile
extension) is owned by the SCIM and enrichment packages.
"""

from syncsvc.profiles._public import PAGE_HEADERS, render_public_page
from syncsvc.profiles._qr import QrCode, qr_code
from syncsvc.profiles._signature import (
    SignatureKind,
    SignatureTemplateError,
    SignatureTemplates,
    signature_context,
)
from syncsvc.profiles._vcard import VCARD_TYPE, make_vcard
from syncsvc.profiles._view import PUBLIC_FIELDS, ProfileView, restricted, view_of
from syncsvc.profiles.quality import FIELDS, quality_report, report_csv, report_table

__all__ = [
    "FIELDS",
    "PAGE_HEADERS",
    "PUBLIC_FIELDS",
    "VCARD_TYPE",
    "ProfileView",
    "QrCode",
    "SignatureKind",
    "SignatureTemplateError",
    "SignatureTemplates",
    "make_vcard",
    "qr_code",
    "quality_report",
    "render_public_page",
    "report_csv",
    "report_table",
    "restricted",
    "signature_context",
    "view_of",
]
