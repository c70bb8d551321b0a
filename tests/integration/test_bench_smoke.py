"""The benchmark scripts run from the command line and print every figure (no timings asserted).

A tiny directory (200 users) and short load runs: this only proves that bench/bench_sync.py,
bench/bench_scim.py and bench/bench_store_growth.py work end to end, as bench/README.md tells
people to run them, and that their output holds each figure RESULTS.md is written from, with
the no-op sync writing nothing and no request failing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SYNC_PHASES = ("full", "noop_full", "incremental_timestamp", "change_feed_prime", "change_feed")
SCIM_SCENARIOS = (
    "get_by_id",
    "filter_username_eq",
    "filter_co",
    "list_100_index",
    "list_100_cursor",
    "get_by_id_nocache",
    "filter_username_eq_nocache",
    "filter_co_nocache",
    "list_100_index_nocache",
    "list_100_cursor_nocache",
    "patch_profile",
    "post_user",
)
LOAD_FIGURES = ("requests", "req_per_s", "p50_ms", "p99_ms", "errors", "server_cpu_us_per_req")


def run_script(name: str, *args: str, tmp_path: Path) -> tuple[dict[str, Any], str]:
    out = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / name), *args, "--data-dir", str(tmp_path / "data"),
         "--json", str(out)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stderr


def test_bench_sync_prints_every_phase_with_its_baselines(tmp_path: Path) -> None:
    result, summary = run_script(
        "bench_sync.py",
        "--users",
        "200",
        "--groups",
        "10",
        "--store",
        "sqlite",
        "--changes",
        "20",
        tmp_path=tmp_path,
    )

    assert result["entries"] == 210
    for name in ("ldap3_paged_read", "ldapsearch", "syncsvc_source_read"):
        baseline = result["baselines"][name]
        assert (
            baseline["seconds"] > 0
            and baseline["peak_rss_mib"] > 0
            and baseline["us_per_entry"] > 0
        )
        assert {"cpu_s", "cpu_us_per_entry", "slapd_cpu_s"} <= baseline.keys()
    runs = result["sqlite"]
    for phase in SYNC_PHASES:
        run = runs[phase]
        assert run["status"] == "success", run
        assert run["seconds"] > 0 and run["peak_rss_mib"] > 0 and run["us_per_entry"] > 0
        assert {"rows_written", "cpu_s", "cpu_us_per_entry", "slapd_cpu_s"} <= run.keys()
    for phase in ("full", "noop_full", "change_feed_prime"):
        assert {
            "ratio_to_ldap3_read",
            "ratio_to_ldapsearch",
            "ratio_to_source_read",
            "cpu_ratio_to_ldap3_read",
        } <= runs[phase].keys()
    for phase in ("incremental_timestamp", "change_feed"):
        assert runs[phase]["baseline_ldap3"]["entries"] >= 20
        assert runs[phase]["ratio_to_baseline_ldap3"] is not None
        assert "cpu_ratio_to_baseline_ldap3" in runs[phase]
    assert runs["full"]["rows_written"] == 210
    assert runs["noop_full"]["rows_written"] == 0
    assert runs["incremental_timestamp"]["updated"] == 20
    assert (runs["change_feed"]["method"], runs["change_feed"]["updated"]) == ("contentsync", 20)
    for phase in SYNC_PHASES:
        assert phase in summary
    # bench/report.py turns the same JSON into RESULTS.md's tables.
    tables = subprocess.run(
        [sys.executable, str(REPO / "bench" / "report.py"), str(tmp_path / "bench_sync.py.json")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "| sqlite / noop_full |" in tables


def test_bench_sync_says_which_baselines_it_skipped(tmp_path: Path) -> None:
    """The 1M runs skip the slow baselines: their ratios read n/a, never a number or None."""
    result, summary = run_script(
        "bench_sync.py", "--users", "50", "--groups", "5", "--store", "sqlite",
        "--no-ldapsearch", "--no-ldap3-read", "--no-change-feed", tmp_path=tmp_path,
    )  # fmt: skip

    assert result["baselines"]["ldapsearch"]["skipped"] is True
    assert result["sqlite"]["full"]["ratio_to_ldapsearch"] is None
    assert "None" not in summary
    assert "n/a of ldapsearch" in summary
    tables = subprocess.run(
        [sys.executable, str(REPO / "bench" / "report.py"), str(tmp_path / "bench_sync.py.json")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "None" not in tables and "skipped" in tables


def test_bench_scim_prints_every_scenario_against_its_baseline(tmp_path: Path) -> None:
    result, summary = run_script(
        "bench_scim.py",
        "--users",
        "200",
        "--seconds",
        "0.5",
        "--connections",
        "8",
        tmp_path=tmp_path,
    )

    assert "read=210" in result["sync"]["summary"]
    for name in SCIM_SCENARIOS:
        scenario = result[name]
        for side in ("syncsvc", "baseline"):
            assert set(LOAD_FIGURES) <= scenario[side].keys()
            assert scenario[side]["requests"] > 0
            assert scenario[side]["errors"] == 0, scenario[side]["first_error"]
        assert scenario["ratio_req_per_s"] > 0
        assert scenario["bytes"] > 0
        assert scenario["targets"]["zero_errors"] is True
        assert name in summary
    # The server answered repeats from its response cache.
    assert result["filter_username_eq"]["syncsvc"]["cache_hits"] > 0
    assert result["post_user"]["status"] == 201
    assert result["patch_profile"]["status"] == 200
    # Every list page holds 100 users; the cursor page was reached by following nextCursor.
    assert result["list_100_index"]["bytes"] > 50 * result["get_by_id"]["bytes"]
    assert result["list_100_cursor"]["bytes"] > 50 * result["get_by_id"]["bytes"]
    tables = subprocess.run(
        [sys.executable, str(REPO / "bench" / "report.py"), str(tmp_path / "bench_scim.py.json")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "| POST post_user |" in tables


def test_bench_store_growth_prints_each_slice_against_its_baseline(tmp_path: Path) -> None:
    result, summary = run_script(
        "bench_store_growth.py", "--users", "2000", "--slice", "1000", tmp_path=tmp_path,
    )  # fmt: skip

    # The store's table as a first load has it: the randomly keyed indexes, not the deferred
    # ones; the baseline's without the former.
    keyed = [["anchor"], ["dn_norm"], ["user_name_lower"]]
    store, baseline = result["store"]["indexes"], result["baseline"]["indexes"]
    assert all(columns in store for columns in keyed) and ["external_id"] not in store
    assert not any(columns in baseline for columns in keyed) and ["id"] in baseline
    for name in ("store", "baseline"):
        slices = result[name]["slices"]
        assert [part["users"] for part in slices] == [1000, 2000]
        assert all(part["insert_s"] > 0 and part["us_per_user"] > 0 for part in slices)
        assert result[name]["growth"] > 0
    assert all(part["ratio_to_baseline"] > 0 for part in result["store"]["slices"])
    assert "against its first slice" in summary
