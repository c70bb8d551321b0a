"""Integration tests: real slapd and PostgreSQL, started by ``tests/support`` (see conftest)."""
