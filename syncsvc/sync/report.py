"""What a run did: counts, problems, planned changes; and its one-line summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncsvc.domain import Problem, RunMode, RunStatus
from syncsvc.store.runs import COUNTS
from syncsvc.store.writes import Change, PageOutcome, Removal

__all__ = ["SyncReport"]


@dataclass(slots=True)
class SyncReport:
    """Mutable while the run goes; read by the CLI and the admin API when it ends."""

    run_id: str
    mode: RunMode
    trigger: str
    dry_run: bool = False
    method: str = "paged"
    status: RunStatus = RunStatus.RUNNING
    detail: str | None = None
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    deleted: int = 0
    problems: list[Problem] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, outcome: PageOutcome) -> None:
        self.created += outcome.created
        self.updated += outcome.updated
        self.unchanged += outcome.unchanged
        self.problems.extend(outcome.problems)
        self.changes.extend(outcome.changes)

    @property
    def counts(self) -> dict[str, int]:
        values = {name: getattr(self, name) for name in COUNTS if name != "problems"}
        return {**values, "problems": len(self.problems)}

    def summary(self) -> str:
        """One line for terminals and logs."""
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items())
        prefix = "dry run: " if self.dry_run else ""
        line = f"{prefix}{self.mode} sync {self.status} ({self.method}) in {self.seconds:.2f}s: {counts}"
        return f"{line}; {self.detail}" if self.detail else line
