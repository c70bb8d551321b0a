"""The HTTP surface: health probes now; SCIM, admin API and profiles mount here."""

from syncsvc.http.app import ENGINE, create_app

__all__ = ["ENGINE", "create_app"]
