"""Where the time goes, from a py-spy raw (collapsed stacks) file: the top functions.

    python bench/profile_top.py /tmp/prof/get_by_id.txt [--top 25] [--only syncsvc]

py-spy ``record --format raw`` writes one line per distinct stack: ``frame;frame;... count``.
Prints the share of samples each function is on the stack for (inclusive) and at the top of
(self), so a report can say "42% in JSON rendering" without a flame-graph viewer.

Samples of threads that only wait are dropped first (py-spy cannot tell a blocking C call from
work): the event loop in ``select`` and aiosqlite's worker thread blocked on its queue. So the
shares are of busy samples; the header says how many were idle.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# A frame is "function (path/file.py:line)"; the line number is dropped to merge call sites.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match["file"]
    for marker in ("site-packages/", "/syncsvc/", "/lib/python3"):
        if marker in file:
            file = (
                file.split(marker, 1)[1]
                if marker != "/syncsvc/"
                else "syncsvc/" + file.split(marker, 1)[1]
            )
            break
    return f"{match['func']} ({file})"


def idle_leaves() -> set[str]:
    """Leaf frames (raw, with line numbers) that mean "this thread is waiting"."""
    leaves = set()
    try:
        import inspect

        import aiosqlite.core

        lines, first = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)
        for offset, text in enumerate(lines):
            if "tx.get()" in text:
                leaves.add(f"_connection_worker_thread (aiosqlite/core.py:{first + offset})")
    except (ImportError, AttributeError, OSError):
        pass
    return leaves


_IDLE_FUNCTIONS = ("EpollSelector.select (selectors.py", "SimpleQueue.get", "Condition.wait (")


def top(path: Path, count: int, only: str | None) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    idle_raw = idle_leaves()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        n = int(samples)
        raw = [f.strip() for f in stack.split(";") if f]
        if raw and (raw[-1] in idle_raw or raw[-1].startswith(_IDLE_FUNCTIONS)):
            idle += n
            continue
        total += n
        frames = [frame_name(f) for f in raw]
        for name in set(frames):
            inclusive[name] += n
        if frames:
            own[frames[-1]] += n
    if not total:
        return f"{path}: no samples"
    lines = [
        f"{path.name}: {total} busy samples ({idle} idle dropped)",
        "  inclusive%  self%  function",
    ]
    for name, n in inclusive.most_common():
        if only and only not in name:
            continue
        lines.append(f"  {100 * n / total:9.1f} {100 * own[name] / total:6.1f}  {name}")
        if len(lines) >= count + 2:
            break
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", default=None, help="only functions whose name or file has this")
    args = parser.parse_args()
    for path in args.files:
        print(top(path, args.top, args.only))


if __name__ == "__main__":
    main()
