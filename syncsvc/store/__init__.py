"""The SQL store: schema, migrations, the writes of a sync, run records and state."""

from syncsvc.store.engine import create_engine, current_revision, upgrade

__all__ = ["create_engine", "current_revision", "upgrade"]
