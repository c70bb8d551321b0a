"""The one exception tree of syncsvc.

    SyncSvcError
    ├── ConfigError            settings cannot be loaded; carries every problem found
    ├── DirectoryError         the LDAP source answered with an error
    │   ├── DirectoryUnavailable   no server of the configured list could be reached
    │   └── ContentSyncRefreshRequired   the server asks for a fresh RFC 4533 refresh
    ├── StoreError             the database refused or could not be reached
    ├── SyncBusy               another run holds the sync lock
    └── SyncAborted            a run stopped before it could complete its read

Per-entry problems (an entry that cannot be mapped) are values, not exceptions:
see :class:`syncsvc.domain.Problem`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "ContentSyncRefreshRequired",
    "DirectoryError",
    "DirectoryUnavailable",
    "StoreError",
    "SyncAborted",
    "SyncBusy",
    "SyncSvcError",
]


class SyncSvcError(Exception):
    """Base of every error syncsvc raises on purpose."""


class ConfigError(SyncSvcError):
    """The configuration has one or more problems; ``problems`` lists all of them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class DirectoryError(SyncSvcError):
    """The directory answered a request with an error."""


class DirectoryUnavailable(DirectoryError):
    """No configured directory server could be reached (or it went away mid-read)."""


class ContentSyncRefreshRequired(DirectoryError):
    """The server cannot continue from the stored cookie (e-syncRefreshRequired, RFC 4533 §3.4)."""


class StoreError(SyncSvcError):
    """The store could not complete an operation."""


class SyncBusy(SyncSvcError):
    """Another sync run holds the lock; this one did not start."""


class SyncAborted(SyncSvcError):
    """A run stopped before its read was complete; nothing was removed."""
