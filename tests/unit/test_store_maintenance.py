"""When a sync refreshes the planner's statistics: only after writing a large share of a table."""

from __future__ import annotations

from syncsvc.store.maintenance import worth_refreshing


class TestWorthRefreshing:
    def test_first_load_of_a_large_directory(self) -> None:
        assert worth_refreshing(10_000, 10_000)

    def test_small_runs_are_left_to_autovacuum(self) -> None:
        """A few hundred changes never pay for a VACUUM, whatever the share."""
        assert not worth_refreshing(300, 300)

    def test_a_small_share_of_a_large_store(self) -> None:
        assert not worth_refreshing(2_000, 100_000)
        assert worth_refreshing(20_000, 100_000)
