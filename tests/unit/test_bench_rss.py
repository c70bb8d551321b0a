"""bench/bench_sync.py reports each phase's own peak RSS, not the bench's.

Linux carries a parent's high-water RSS into a child's ``ru_maxrss`` at fork and exec, so a
bench that once held a lot (a 1M LDIF generated in-process) saw every phase as at least that
big. These tests hold a ballast of 256 MiB in this process and check that the figures the bench
takes of a small child stay small, while wait4 would have said otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import bench_sync  # noqa: E402  (bench/ is a folder of scripts, not a package)

BALLAST_MIB = 256


@pytest.fixture
def ballast() -> Iterator[bytearray]:
    held = bytearray(BALLAST_MIB << 20)
    for offset in range(0, len(held), 4096):  # touch every page: resident, not just reserved
        held[offset] = 1
    yield held
    del held


def test_wait4_would_report_the_parents_peak(ballast: bytearray) -> None:
    """The premise: a tiny child's ru_maxrss, as wait4 reports it, is this process's size."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped above; Popen would otherwise think it still runs
    assert usage.ru_maxrss / 1024 >= BALLAST_MIB


def test_a_phase_reads_its_own_peak(ballast: bytearray) -> None:
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); import bench_sync; " \
           "print(bench_sync.own_peak_rss_mib())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 0 < float(out.stdout) < BALLAST_MIB / 4


def test_a_tool_is_measured_alone(ballast: bytearray) -> None:
    wall, cpu, rss = bench_sync.run_tool(
        [sys.executable, "-c", "import time; time.sleep(0.2)"], env=dict(os.environ))
    assert 0.2 <= wall < 10 and cpu >= 0
    assert 0 < rss < BALLAST_MIB / 4


def test_a_failing_tool_stops_the_bench() -> None:
    with pytest.raises(SystemExit, match="exited with 3"):
        bench_sync.run_tool([sys.executable, "-c", "raise SystemExit(3)"], env=dict(os.environ))
