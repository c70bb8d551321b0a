"""`syncsvc serve` as a real subprocess: a second syncsvc as a push target, or the instance
under test when a test must kill it.

:class:`ServeProcess` writes a TOML config into its work folder, makes a SCIM token with the
real CLI (``syncsvc token create``), starts ``python -m syncsvc serve`` on a free loopback port
and waits for ``/healthz``. ``stop()`` sends SIGTERM (a clean shutdown), ``kill()`` SIGKILL;
``start()`` again serves the same store on the same port. :meth:`ServeProcess.peer` builds one
with an empty directory: its SCIM server (``url``, ``token``) is then a push target whose
resources live in its own SQLite store and survive a restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.scim2server import free_port

__all__ = ["ServeProcess"]

_EMPTY_LDIF = "dn: dc=peer,dc=test\nobjectClass: top\nobjectClass: dcObject\n" \
              "objectClass: organization\ndc: peer\no: Peer\n"


@dataclass
class ServeProcess:
    workdir: Path
    config: str  # TOML, without [http] and [store] (added here)
    port: int = field(default_factory=free_port)
    token: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def peer(cls, workdir: Path) -> ServeProcess:
        """A syncsvc whose directory is empty: a plain SCIM server for push tests."""
        workdir.mkdir(parents=True, exist_ok=True)
        ldif = workdir / "empty.ldif"
        ldif.write_text(_EMPTY_LDIF)
        return cls(workdir, f'[ldap]\nurl = ["ldif://{ldif}"]\n[schedule]\nenabled = false\n')

    @property
    def store_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.workdir / 'store.db'}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/scim/v2"

    @property
    def config_path(self) -> Path:
        return self.workdir / "syncsvc.toml"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}
        env["SYNCSVC_LOG__FORMAT"] = "json"
        return env

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            f'[store]\nurl = "{self.store_url}"\n[http]\nhost = "127.0.0.1"\nport = {self.port}\n'
            + self.config)

    def cli(self, *args: str) -> str:
        """Run ``syncsvc --config ... ARGS`` to completion; its stdout."""
        self._write_config()
        done = subprocess.run([sys.executable, "-m", "syncsvc", "--config",
                               str(self.config_path), *args], cwd=self.workdir, env=self._env(),
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"syncsvc {' '.join(args)}: {done.returncode} {done.stderr[-2000:]}")
        return done.stdout

    def start(self, *, with_token: bool = True) -> ServeProcess:
        self._write_config()
        if with_token and not self.token:
            self.token = self.cli("token", "create", "--name", "push",
                                  "--scopes", "scim:read,scim:write").strip()
        log = (self.workdir / "serve.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncsvc", "--config", str(self.config_path), "serve"],
            cwd=self.workdir, env=self._env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(  # noqa: S310 - loopback
                        f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"serve did not answer: {self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM and wait; the exit status (None when it was not running)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code, self.proc = self.proc.returncode, None
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log_tail(self, chars: int = 4000) -> str:
        path = self.workdir / "serve.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # -- reading the peer's SCIM server -------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One SCIM request with the token; the decoded answer (None when empty)."""
        req = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/scim+json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from exc
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def find_user(self, user_name: str) -> str:
        """Our id of the user ``user_name``."""
        page = self.get(f'/Users?filter=userName%20eq%20%22{user_name}%22')
        return str(page["Resources"][0]["id"])

    def all(self, endpoint: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.get(f"/{endpoint}?startIndex={len(out) + 1}&count=500")
            out.extend(page.get("Resources") or [])
            if not page.get("Resources") or len(out) >= page["totalResults"]:
                return out
