"""The SQL store: schema, migrations, the writes of a sync, run records and state."""

from syncsvc.store.availability import unavailable_reason
from syncsvc.store.engine import create_engine, current_revision, head_revision, upgrade

__all__ = ["create_engine", "current_revision", "head_revision", "unavailable_reason", "upgrade"]
