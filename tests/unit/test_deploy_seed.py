"""docker-compose's LDAP seeding against a real slapd, and syncsvc wired as compose wires it.

No Docker engine runs here, so the compose stack is replayed piece by piece: an empty private
slapd stands in for the OpenLDAP container, ``deploy/compose/seed-ldap.sh`` loads the demo
directory into it (twice: the second run must do nothing), then ``syncsvc sync --full`` runs with
the compose service's SYNCSVC_* variables (URL, bind and store pointed at the local stand-ins).
Needs slapd and ldap-utils (scripts/test installs them), hence the integration marker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # tests/unit is not a package; the slapd harness lives in tests/
    sys.path.insert(0, str(ROOT))

from tests.support.slapd import Slapd, missing_tools

SEED = ROOT / "deploy" / "compose" / "seed-ldap.sh"
DEMO_LDIF = ROOT / "syncsvc" / "demo" / "directory.ldif"

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A slapd holding only the suffix and the service account, like a fresh LDAP container."""
    missing = missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/test", pytrace=False)
    server = Slapd.create(tmp_path / "slapd", "")
    try:
        yield server
    finally:
        server.stop()


def _seed(server: Slapd, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    password = tmp_path / "ldap_admin_password"
    password.write_text(server.admin_password + "\n")  # as an editor saves it
    env = {**os.environ, "LDAP_URL": server.url, "LDAP_BASE_DN": server.base_dn,
           "LDAP_ADMIN_DN": server.admin_dn, "LDAP_ADMIN_PASSWORD_FILE": str(password),
           "SEED_LDIF": str(DEMO_LDIF)}
    env["PATH"] = f"{env.get('PATH', '')}:/usr/sbin:/sbin"
    return subprocess.run(["sh", str(SEED)], check=False, env=env, capture_output=True, text=True, timeout=120)


def test_seed_then_sync_as_compose_wires_it(empty_slapd: Slapd, tmp_path: Path) -> None:
    """The seed loads 230 entries once; syncsvc, with compose's variables, syncs 200 users."""
    first = _seed(empty_slapd, tmp_path)
    assert 0 == first.returncode, first.stderr
    again = _seed(empty_slapd, tmp_path)
    assert (0, True) == (again.returncode, "already seeded" in again.stdout), again.stderr

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {k: str(v) for k, v in compose["services"]["syncsvc"]["environment"].items()}
    bind_password = tmp_path / "ldap_syncsvc_password"
    bind_password.write_text(empty_slapd.service_password + "\n")
    store_url = tmp_path / "store_url"
    store_url.write_text(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}\n")
    env.update(SYNCSVC_LDAP__URL=empty_slapd.url, SYNCSVC_LDAP__BIND_DN=empty_slapd.service_dn,
               SYNCSVC_LDAP__BIND_PASSWORD_FILE=str(bind_password),
               SYNCSVC_STORE__URL_FILE=str(store_url))
    assert set(env) == {k for k in compose["services"]["syncsvc"]["environment"]}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")} | env

    def syncsvc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "syncsvc", *args], check=False, cwd=tmp_path,
                              env=full_env, capture_output=True, text=True, timeout=300)

    sync = syncsvc("sync", "--full")
    assert 0 == sync.returncode, sync.stderr
    runs = json.loads(syncsvc("runs", "list", "--json").stdout)
    run = runs[0] if isinstance(runs, list) else runs["runs"][0]
    assert "success" == run["status"]
    assert 220 == run["counts"]["created"]  # 200 users + 20 groups
