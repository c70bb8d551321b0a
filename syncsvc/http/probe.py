"""Is the directory reachable? For /readyz, which reports it without depending on it.

Reads are served from the store, so an LDAP outage must not take a replica out of its load
balancer: /readyz stays 200 and only says ``"ldap": "unreachable"``. It must not wait for LDAP
either (a directory that drops packets would outlast the orchestrator's probe timeout), so it
answers with the last known state and, when that is older than ``ttl`` seconds, starts one
check in the background.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

import structlog

from syncsvc.errors import SyncSvcError
from syncsvc.ldap.protocol import Directory

__all__ = ["DirectoryProbe", "Reachability"]

log = structlog.get_logger(__name__)

Reachability = Literal["reachable", "unreachable", "unknown"]


class DirectoryProbe:
    """Reads the directory's root DSE in the background, at most once every ``ttl`` seconds."""

    def __init__(self, directory: Directory, *, ttl: float = 15.0, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._directory = directory
        self._ttl, self._timeout, self._clock = ttl, timeout, clock
        self._state: Reachability = "unknown"
        self._checked: float | None = None
        self._task: asyncio.Task[None] | None = None

    def status(self) -> Reachability:
        """The last known state, never waiting; starts a check when it is stale."""
        stale = self._checked is None or self._clock() - self._checked >= self._ttl
        if stale and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._check())
        return self._state

    async def settle(self) -> Reachability:
        """Wait for a check in flight (tests, and a first answer at start-up)."""
        if self._task is not None:
            await asyncio.shield(self._task)
        return self._state

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _check(self) -> None:
        try:
            await asyncio.wait_for(self._directory.server_info(), self._timeout)
            state: Reachability = "reachable"
        except (SyncSvcError, TimeoutError, OSError) as exc:
            # The reason goes to the log only: /readyz is public and answers with a word.
            log.debug("ldap.probe_failed", error=str(exc), error_type=type(exc).__name__)
            state = "unreachable"
        if state != self._state:  # log changes, not every probe
            emit = log.info if state == "reachable" else log.warning
            emit("ldap.reachability", state=state, directory=self._directory.description)
        self._state, self._checked = state, self._clock()
