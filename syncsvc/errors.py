"""The one exception tree of syncsvc.

    SyncSvcError
    ├── ConfigError            settings cannot be loaded; carries every problem found
    ├── DirectoryError         the LDAP source answered with an error
    │   ├── DirectoryUnavailable   no server of the configured list could be reached
    │   └── ContentSyncRefreshRequired   the server asks for a fresh RFC 4533 refresh
    ├── StoreError             the database refused or could not be reached
    ├── SyncBusy               another run holds the sync lock
    ├── SyncStopped            shutdown: the run stopped at a page boundary
    ├── SyncAborted            a run stopped before it could complete its read
    ├── PushError              pushing to a downstream SCIM target failed
    │   ├── TargetUnavailable      retryable: connection error, timeout, 429, 5xx (retry_after)
    │   ├── TargetRejected         permanent 4xx for one resource (status, scimType, detail)
    │   └── TargetQuarantined      the target failed too often; pushes wait for a resume
    └── ScimError              an RFC 7644 §3.12 error: carries its HTTP status and scimType
        ├── InvalidFilter, TooMany, Uniqueness, Mutability, InvalidSyntax, InvalidPath,
        │   NoTarget, InvalidValue, InvalidVersion, Sensitive        (one per scimType)
        ├── Unauthorized (401), Forbidden (403), NotFound (404), Conflict (409),
        │   PreconditionFailed (412; ConcurrentUpdate: a lost race, retried without If-Match),
        │   PayloadTooLarge (413), NotImplemented_ (501)
        └── NotModified (304: If-None-Match matched; no body)

Per-entry problems (an entry that cannot be mapped) are values, not exceptions:
see :class:`syncsvc.domain.Problem`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "ConfigError",
    "ConcurrentUpdate",
    "Conflict",
    "ContentSyncRefreshRequired",
    "DirectoryError",
    "DirectoryUnavailable",
    "Forbidden",
    "InvalidFilter",
    "InvalidPath",
    "InvalidSyntax",
    "InvalidValue",
    "InvalidVersion",
    "Mutability",
    "NoTarget",
    "NotFound",
    "NotImplemented_",
    "NotModified",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PushError",
    "ScimError",
    "Sensitive",
    "StoreError",
    "SyncAborted",
    "SyncBusy",
    "SyncStopped",
    "SyncSvcError",
    "TargetQuarantined",
    "TargetRejected",
    "TargetUnavailable",
    "TooMany",
    "Unauthorized",
    "Uniqueness",
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


class SyncStopped(SyncSvcError):
    """The service is shutting down: the run stopped at a page boundary."""


class SyncAborted(SyncSvcError):
    """A run stopped before its read was complete; nothing was removed."""


class PushError(SyncSvcError):
    """Pushing to a downstream SCIM target (``[[targets]]``) failed."""


class TargetUnavailable(PushError):
    """The target could not take the request now: connection error, timeout, 429 or 5xx.

    Retryable. ``retry_after`` is the target's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class TargetRejected(PushError):
    """The target refused one resource for good (a 4xx other than 429): retrying will not help.

    Carries the target's RFC 7644 §3.12 error: ``status``, ``scim_type`` and ``detail``.
    """

    def __init__(self, detail: str, *, status: int, scim_type: str | None = None) -> None:
        super().__init__(f"{status}{' ' + scim_type if scim_type else ''}: {detail}")
        self.detail = detail
        self.status = status
        self.scim_type = scim_type


class TargetQuarantined(PushError):
    """The target failed past its threshold; nothing is pushed until it is resumed."""


class ScimError(SyncSvcError):
    """An error a SCIM client sees as the RFC 7644 §3.12 error document.

    Handlers raise these; exactly one middleware turns them into responses. ``detail`` is
    shown to the client, so it never carries secrets or tracebacks.
    """

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidFilter(ScimError):
    """The filter syntax was invalid or the attribute/operator combination is not supported."""

    scim_type = "invalidFilter"


class TooMany(ScimError):
    """The filter yields more results than the server is willing to compute (maxResults)."""

    scim_type = "tooMany"


class Uniqueness(ScimError):
    """userName or displayName is already taken (RFC 7644 §3.3: 409)."""

    status = 409
    scim_type = "uniqueness"


class Mutability(ScimError):
    """The attribute is readOnly or immutable, e.g. owned by the directory."""

    scim_type = "mutability"


class InvalidSyntax(ScimError):
    """The request body could not be parsed or violates the schema's structure."""

    scim_type = "invalidSyntax"


class InvalidPath(ScimError):
    """A PATCH path is malformed or names no attribute."""

    scim_type = "invalidPath"


class NoTarget(ScimError):
    """A PATCH path with a filter matched nothing where a target is required."""

    scim_type = "noTarget"


class InvalidValue(ScimError):
    """A required value is missing or a value is not compatible with its attribute."""

    scim_type = "invalidValue"


class InvalidVersion(ScimError):
    """The requested SCIM protocol version is not supported."""

    scim_type = "invalidVers"


class Sensitive(ScimError):
    """Sensitive information (a filter) was sent in the URI; use POST .search."""

    status = 403
    scim_type = "sensitive"


class Unauthorized(ScimError):
    """No bearer token, or one that is unknown or revoked."""

    status = 401


class Forbidden(ScimError):
    """The token lacks the scope this request needs."""

    status = 403


class NotFound(ScimError):
    status = 404


class Conflict(ScimError):
    status = 409


class PreconditionFailed(ScimError):
    """If-Match did not match the resource's current version."""

    status = 412


class ConcurrentUpdate(PreconditionFailed):
    """Another writer changed the resource between our read and our write. Without If-Match
    the client asked for no precondition, so the service retries; with it, this is the 412."""


class PayloadTooLarge(ScimError):
    status = 413


class NotImplemented_(ScimError):  # noqa: N801 - the builtin NotImplemented is not an exception
    status = 501


class NotModified(ScimError):
    """If-None-Match matched: 304 without a body (not an error, but it ends the handler)."""

    status = 304
