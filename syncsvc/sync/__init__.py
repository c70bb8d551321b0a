"""The sync engine: drives directory -> mapping -> store runs, one at a time."""

from syncsvc.sync.lock import RunLock
from syncsvc.sync.pipeline import Progress, SyncDeps, SyncOptions, run_sync
from syncsvc.sync.report import SyncReport

__all__ = ["Progress", "RunLock", "SyncDeps", "SyncOptions", "SyncReport", "run_sync"]
