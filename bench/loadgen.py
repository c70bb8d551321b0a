"""A small HTTP load generator: N concurrent connections for T seconds against one URL.

    python bench/loadgen.py URL --connections 32 --seconds 5 [--header 'Authorization: Bearer x']
    python bench/loadgen.py URL --method POST --body '{"userName": "u-{n}"}' \
        --header 'Content-Type: application/scim+json'

Prints JSON: requests/s, p50/p99 latency in ms, errors (a status >= 400 or a connection
failure), and the first error seen. Runs in its own process so that it does not share an event
loop (or a core's GIL) with the server it measures. In a --body, ``{n}`` is replaced by a
counter (from --counter-start, one step per request over all connections), so each POST can
create a distinct resource; nothing else in the body is touched (JSON braces stay as they are).
With --url-file, requests go to the file's URLs (one a line) in turn, e.g. PATCHes spread over
many users so that concurrent writes do not race for one resource.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp


async def run(
    urls: list[str],
    connections: int,
    seconds: float,
    headers: dict[str, str],
    method: str,
    body: str | None,
    counter_start: int = 0,
) -> dict[str, object]:
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    counter = counter_start
    turn = 0
    templated = body is not None and "{n}" in body
    fixed = body.encode() if body is not None and not templated else None
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal errors, first_error, counter, turn
            while time.perf_counter() < deadline:
                url = urls[turn % len(urls)]
                turn += 1
                data = fixed
                if templated:
                    assert body is not None
                    data = body.replace("{n}", str(counter)).encode()
                    counter += 1
                started = time.perf_counter()
                try:
                    async with session.request(method, url, data=data) as response:
                        text = await response.read()
                        if response.status >= 400:
                            errors += 1
                            first_error = first_error or f"{response.status} {text[:200]!r}"
                except aiohttp.ClientError as exc:
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    if not latencies:
        return {
            "requests": 0,
            "req_per_s": 0.0,
            "p50_ms": None,
            "p99_ms": None,
            "errors": errors,
            "first_error": first_error,
        }
    return {
        "requests": len(latencies),
        "req_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 2),
        "errors": errors,
        "first_error": first_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?", help="the URL (or give --url-file)")
    parser.add_argument("--url-file", type=str, default=None, help="URLs, one a line, in turn")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default=None, help="request body; {n} becomes a counter")
    parser.add_argument("--counter-start", type=int, default=0)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    if args.url_file:
        with open(args.url_file, encoding="utf-8") as lines:
            urls = [line.strip() for line in lines if line.strip()]
    elif args.url:
        urls = [args.url]
    else:
        parser.error("give a URL or --url-file")
    print(
        json.dumps(
            asyncio.run(
                run(
                    urls,
                    args.connections,
                    args.seconds,
                    headers,
                    args.method,
                    args.body,
                    args.counter_start,
                )
            )
        )
    )


if __name__ == "__main__":
    main()
