"""Outbound provisioning: push the store to downstream SCIM services (``[[targets]]``).

Changes are captured in the push outbox in the transaction that makes them
(:mod:`syncsvc.store.capture`); per target, a worker drains it as a SCIM client. The store side:
:mod:`~syncsvc.push.outbox` (read and prune the outbox) and :mod:`~syncsvc.push.state` (cursor,
health, quarantine, remote ids). :data:`PUSH_RUNNER` is how the admin routes reach the runner
that ``serve`` starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from syncsvc.push.outbox import OutboxItem, head_seq, pending, prune, record
from syncsvc.push.state import RemoteLink, TargetState

if TYPE_CHECKING:
    from syncsvc.push.runner import PushRunner

__all__ = [
    "PUSH_RUNNER",
    "OutboxItem",
    "RemoteLink",
    "TargetState",
    "head_seq",
    "pending",
    "prune",
    "record",
]

# Set by service.py when targets are configured; absent otherwise (the admin routes then answer
# from the stored state and refuse push/reconcile with 409).
PUSH_RUNNER: web.AppKey[PushRunner] = web.AppKey("push_runner")
