"""The reference SCIM server from PyPI (``scim2-server``) as a real process on a loopback port.

A push target for the tests of ``syncsvc.push``: :meth:`Scim2Server.start` runs the package's
``scim2-server`` command (a threaded WSGI server keeping its resources in memory, accepting only
the bearer token given with ``--bearer-token``) and waits until ``/v2/ServiceProviderConfig``
answers. The port stays the same across :meth:`stop` and :meth:`start`, so a test can take the
target away and bring it back at the same URL; a stop loses every resource (they live in the
process's memory), so to keep them while the target is unreachable use :meth:`pause` (SIGSTOP:
connections are accepted by the kernel but never answered, as with a hung server) and
:meth:`resume`.

The ``scim2_server`` fixture starts one per test and stops it at teardown.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Scim2Server", "Scim2ServerError", "free_port", "scim2_server"]

_START_TIMEOUT = 20.0


class Scim2ServerError(RuntimeError):
    """The server did not start or answered a test's request with an unexpected status."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command() -> list[str]:
    script = Path(sys.executable).with_name("scim2-server")
    return [str(script)] if script.exists() else [sys.executable, "-m",
                                                   "scim2_server.testserver.cli"]


@dataclass
class Scim2Server:
    """One ``scim2-server`` process; ``url`` is its SCIM base (``http://127.0.0.1:PORT/v2``)."""

    workdir: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Scim2Server:
        """Start the process (empty) and wait until it answers with the token."""
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "scim2-server.log").open("ab")
        self.proc = subprocess.Popen(
            [*_command(), "--hostname", "127.0.0.1", "--port", str(self.port),
             f"--bearer-token={self.token}"],  # "=": a token may start with "-"
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Scim2ServerError(f"scim2-server exited {self.proc.returncode}: "
                                       f"{self.log_tail()}")
            try:
                self.get("/ServiceProviderConfig", timeout=1)
                return self
            except (OSError, Scim2ServerError):
                time.sleep(0.05)
        self.stop()
        raise Scim2ServerError(f"scim2-server did not answer in {_START_TIMEOUT}s: "
                               f"{self.log_tail()}")

    def stop(self) -> None:
        """Stop the process (its resources are gone); the port is kept for :meth:`start`."""
        if self.proc is None:
            return
        if self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> Scim2Server:
        self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): requests hang until :meth:`resume`; data is kept."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def log_tail(self, chars: int = 3000) -> str:
        path = self.workdir / "scim2-server.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # -- a tiny synchronous client for assertions and for seeding the target ----------------

    def request(self, method: str, path: str, body: Any = None, *, timeout: float = 10) -> Any:
        """One request with the token; the decoded JSON answer (None when empty)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/scim+json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise Scim2ServerError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from exc
        return json.loads(raw) if raw else None

    def get(self, path: str, *, timeout: float = 10) -> Any:
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def all(self, endpoint: str) -> list[dict[str, Any]]:
        """Every resource of ``Users`` or ``Groups`` (paged through)."""
        out: list[dict[str, Any]] = []
        start = 1
        while True:
            page = self.get(f"/{endpoint}?startIndex={start}&count=500")
            resources = page.get("Resources") or []
            out.extend(resources)
            if not resources or len(out) >= int(page.get("totalResults", 0)):
                return out
            start += len(resources)

    def users(self) -> dict[str, dict[str, Any]]:
        """Users by userName."""
        return {u["userName"]: u for u in self.all("Users")}

    def groups(self) -> dict[str, dict[str, Any]]:
        """Groups by displayName."""
        return {g["displayName"]: g for g in self.all("Groups")}


@pytest.fixture
def scim2_server(tmp_path: Path) -> Iterator[Scim2Server]:
    """A running, empty ``scim2-server`` on a free loopback port; stopped at teardown."""
    server = Scim2Server(workdir=tmp_path / "scim2-server")
    server.start()
    try:
        yield server
    finally:
        server.stop()

