"""The container artefacts, checked without a Docker engine (none runs here).

What can be checked is: the YAML files parse and hang together (selectors, ports, probes, mounts);
every ``SYNCSVC_*`` variable and every key of the ConfigMap's ``syncsvc.toml`` is a real setting
(they are loaded with :func:`syncsvc.settings.load_settings`, which refuses unknown keys); the
Dockerfile's shape (stages, non-root user, health check, entrypoint, build context); and the
image's entrypoint script, run directly against a temporary SQLite store.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncsvc.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
STRIP = ROOT / "deploy" / "compose" / "ldif-strip.sh"
DEMO_LDIF = ROOT / "syncsvc" / "demo" / "directory.ldif"
VENV_BIN = Path(sys.executable).parent
OPERATIONAL = ("entryuuid", "entrycsn", "createtimestamp", "modifytimestamp", "creatorsname",
               "modifiersname", "structuralobjectclass")


def k8s_docs() -> dict[str, dict[str, Any]]:
    """Every manifest under deploy/k8s (the kustomization aside), by kind."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                docs[doc["kind"]] = doc
    return docs


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def settings_env(values: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if k.startswith("SYNCSVC_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class TestKubernetes:
    def test_manifests_parse_and_are_complete(self) -> None:
        """Every file parses; the kustomization lists them all; the five kinds are there."""
        docs = k8s_docs()
        assert {"ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"} == set(docs)
        for doc in docs.values():
            assert doc["metadata"]["name"].startswith("syncsvc")
        kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
        listed = set(kustomization["resources"])
        assert {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} == listed

    def test_deployment(self) -> None:
        """Two replicas, probes on /healthz and /readyz, resources, non-root, selectors agree."""
        docs = k8s_docs()
        deployment = docs["Deployment"]
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        (container,) = pod["containers"]
        assert 2 == spec["replicas"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        assert docs["Service"]["spec"]["selector"].items() <= labels.items()
        assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert 1 == docs["PodDisruptionBudget"]["spec"]["minAvailable"]
        assert "/healthz" == container["livenessProbe"]["httpGet"]["path"]
        assert "/healthz" == container["startupProbe"]["httpGet"]["path"]
        assert "/readyz" == container["readinessProbe"]["httpGet"]["path"]
        port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
        assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "http"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == self._image_uid()
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert ["ALL"] == container["securityContext"]["capabilities"]["drop"]
        toml_text = docs["ConfigMap"]["data"]["syncsvc.toml"]
        assert port == tomllib.loads(toml_text)["http"]["port"]

    def test_configmap_and_secret_load_as_settings(self, tmp_path: Path) -> None:
        """The ConfigMap's syncsvc.toml, with the Secret's files where the Deployment mounts them
        and the Deployment's SYNCSVC_* variables, loads without a problem; each *_file names a
        key of the Secret under the Secret's mount."""
        docs = k8s_docs()
        (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in docs["Deployment"]["spec"]["template"]["spec"]["volumes"]}
        env = {e["name"]: e["value"] for e in container["env"]}
        config_path = env.pop("SYNCSVC_CONFIG")
        config_volume = next(n for n, v in volumes.items() if "configMap" in v
                             and v["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"])
        assert config_path == mounts[config_volume]
        secret_volume = next(n for n, v in volumes.items()
                             if v.get("secret", {}).get("secretName")
                             == docs["Secret"]["metadata"]["name"])
        secret_dir = mounts[secret_volume]

        toml_text = docs["ConfigMap"]["data"]["syncsvc.toml"]
        # *_file keys of secrets (ca_file is a plain setting, the CA bundle's path)
        files = re.findall(r'^\s*(?!ca_file)\w+_file\s*=\s*"([^"]+)"', toml_text, re.MULTILINE)
        secret_files = {str(Path(secret_dir) / key) for key in docs["Secret"]["stringData"]}
        assert set(files) == secret_files
        # Lay the mounts out under tmp_path and point the file at them.
        for key, value in docs["Secret"]["stringData"].items():
            target = tmp_path / Path(secret_dir).relative_to("/") / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(value)
        ca = re.search(r'^ca_file\s*=\s*"([^"]+)"', toml_text, re.MULTILINE)
        assert ca is not None
        (tmp_path / ca.group(1).lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / ca.group(1).lstrip("/")).write_text("-----BEGIN CERTIFICATE-----\n")
        local = re.sub(r'"(/etc/syncsvc/[^"]+)"', lambda m: f'"{tmp_path}{m.group(1)}"', toml_text)
        config = tmp_path / "syncsvc.toml"
        config.write_text(local)

        settings = load_settings(config, settings_env(env))

        assert ("change-me", "postgresql") == (settings.ldap.bind_password,
                                               settings.store.url.split("+", 1)[0])
        assert ("0.0.0.0", 8080, "json") == (settings.http.host, settings.http.port,
                                             settings.log.format)

    @staticmethod
    def _image_uid() -> int:
        user = dict(dockerfile_instructions()[::-1])["USER"]
        return int(user.split(":")[0])


class TestCompose:
    def test_services_and_wiring(self) -> None:
        """OpenLDAP, the seed, PostgreSQL and syncsvc; syncsvc waits for the seed and the store;
        every secret file exists; the store URL's password is PostgreSQL's."""
        data = compose()
        assert {"openldap", "ldap-seed", "postgres", "syncsvc"} == set(data["services"])
        syncsvc = data["services"]["syncsvc"]
        assert "service_completed_successfully" == syncsvc["depends_on"]["ldap-seed"]["condition"]
        assert "service_healthy" == syncsvc["depends_on"]["postgres"]["condition"]
        for name, secret in data["secrets"].items():
            assert (ROOT / secret["file"]).is_file(), name
        for service in data["services"].values():
            for volume in service.get("volumes", []):
                if volume.startswith("./"):
                    assert (ROOT / volume.split(":")[0]).exists(), volume
        secrets = {n: (ROOT / s["file"]).read_text().strip() for n, s in data["secrets"].items()}
        assert f":{secrets['postgres_password']}@postgres:" in secrets["store_url"]
        port = syncsvc["environment"]["SYNCSVC_HTTP__PORT"]
        assert any(p.endswith(f":{port}") for p in syncsvc["ports"])

    def test_syncsvc_environment_loads_as_settings(self, tmp_path: Path) -> None:
        """Every SYNCSVC_* variable of the syncsvc service is a real key (load_settings refuses
        unknown ones), with the compose secrets in place of /run/secrets."""
        data = compose()
        env = {k: str(v) for k, v in data["services"]["syncsvc"]["environment"].items()}
        mounted = set(data["services"]["syncsvc"]["secrets"])
        for name, value in list(env.items()):
            if name.endswith("_FILE"):
                secret = Path(value).name
                assert value == f"/run/secrets/{secret}" and secret in mounted, name
                env[name] = str(ROOT / data["secrets"][secret]["file"])

        settings = load_settings(None, settings_env(env), cwd=tmp_path)

        assert ("ldap://openldap:389",) == settings.ldap.url
        assert "change-me-ldap-syncsvc" == settings.ldap.bind_password
        assert settings.store.url.startswith("postgresql+asyncpg://syncsvc:")
        assert ("0.0.0.0", 8080) == (settings.http.host, settings.http.port)

    def test_seed_ldif_has_no_operational_attributes(self, tmp_path: Path) -> None:
        """ldif-strip.sh keeps every entry but the suffix and drops what ldapadd refuses."""
        out = subprocess.run(["sh", str(STRIP), "dc=example,dc=com"], input=DEMO_LDIF.read_text(),
                             capture_output=True, text=True, check=True).stdout
        dns = re.findall(r"^dn: (.*)$", out, re.MULTILINE)
        source = re.findall(r"^dn: (.*)$", DEMO_LDIF.read_text(), re.MULTILINE)
        assert source[1:] == dns and "dc=example,dc=com" == source[0]
        attributes = {line.split(":", 1)[0].lower() for line in out.splitlines()
                      if line and not line.startswith(" ")}
        assert not attributes & set(OPERATIONAL)
        assert "#" not in {line[:1] for line in out.splitlines()}
        # Every other line of every other entry is kept, in order.
        entries = DEMO_LDIF.read_text().split("\n\n")
        suffix = next(i for i, e in enumerate(entries) if "dn: dc=example,dc=com\n" in e)
        kept = [line for e in entries[suffix + 1:] for line in e.splitlines()
                if line and not line.startswith("#")
                and line.split(":", 1)[0].lower() not in OPERATIONAL]
        assert kept == [line for line in out.splitlines() if line]


class TestDockerfile:
    def test_shape(self) -> None:
        """Multi-stage, slim, non-root, health check on /healthz, the entrypoint script, 8080."""
        ins = dockerfile_instructions()
        froms = [args for word, args in ins if word == "FROM"]
        assert len(froms) >= 2 and any(" AS build" in f for f in froms)
        assert any("slim" in args for word, args in ins if word == "ARG")
        user = [args for word, args in ins if word == "USER"][-1]
        assert int(user.split(":")[0]) >= 1000
        health = [args for word, args in ins if word == "HEALTHCHECK"]
        assert len(health) == 1 and "/healthz" in health[0]
        entrypoint = [args for word, args in ins if word == "ENTRYPOINT"][-1]
        target = yaml.safe_load(entrypoint)[0]
        copies = [args for word, args in ins if word == "COPY"]
        assert any(c.endswith(f"deploy/docker/entrypoint.sh {target}") for c in copies)
        assert os.access(ENTRYPOINT, os.X_OK)
        env = dict(re.findall(r"(SYNCSVC_\w+)=(\S+)",
                              " ".join(args for word, args in ins if word == "ENV")))
        assert "0.0.0.0" == env["SYNCSVC_HTTP__HOST"]
        assert [env["SYNCSVC_HTTP__PORT"]] == [args for word, args in ins if word == "EXPOSE"]
        load_settings(None, env, cwd=ROOT)  # every SYNCSVC_* of the image is a real key

    def test_build_context_holds_what_the_build_copies(self) -> None:
        """Each COPY source (outside --from) exists and .dockerignore lets it in."""
        patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines()
                    if p.strip() and not p.startswith("#")]

        def included(path: str) -> bool:
            keep = True
            for pattern in patterns:
                negate = pattern.startswith("!")
                pat = pattern.lstrip("!").rstrip("/")
                parts = Path(path).parts
                prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
                if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", ""))
                       for p in prefixes):
                    keep = negate
            return keep

        sources = []
        for word, args in dockerfile_instructions():
            if word == "COPY" and "--from" not in args:
                words = [w for w in shlex.split(args) if not w.startswith("--")]
                sources += words[:-1]
        assert sources
        for source in sources:
            assert (ROOT / source).exists(), source
            assert included(source), source
        assert not included(".venv/bin/python") and not included("tests/unit/test_deploy.py")
        assert not included("syncsvc/__pycache__/cli.cpython-311.pyc")
        assert included("syncsvc/admin/static/admin.js")

    def test_package_data_ships_every_data_file(self) -> None:
        """The image installs a wheel: every non-Python file under syncsvc/ must be package
        data, or the container lacks it (the admin page, templates, migrations...)."""
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())
        globs = project["tool"]["setuptools"]["package-data"]["syncsvc"]
        package = ROOT / "syncsvc"
        for path in package.rglob("*"):
            if (path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts
                    or path.suffix == ".db"):
                continue
            relative = path.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(relative, g) for g in globs), relative


class TestEntrypoint:
    def _env(self, tmp_path: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCSVC_")}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        env.update({"SYNCSVC_STORE__URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
                    "SYNCSVC_HTTP__HOST": "127.0.0.1", "SYNCSVC_LOG__FORMAT": "json",
                    "SYNCSVC_SCHEDULE__ENABLED": "false"})
        env.update(extra)
        return env

    def test_command_runs_that_syncsvc_command(self, tmp_path: Path) -> None:
        """`entrypoint.sh check-config` (and `entrypoint.sh syncsvc check-config`) check the
        config and exit 0, without touching the database."""
        for args in (["check-config"], ["syncsvc", "check-config"]):
            done = subprocess.run([str(ENTRYPOINT), *args], check=False, cwd=tmp_path, env=self._env(tmp_path),
                                  capture_output=True, text=True, timeout=60)
            assert 0 == done.returncode, done.stderr
            assert "config OK" in done.stdout
        assert not (tmp_path / "store.db").exists()

    def test_serve_upgrades_then_serves_and_stops_on_sigterm(self, tmp_path: Path) -> None:
        """No arguments: `db upgrade` on the temp SQLite, then `serve` (exec'd: the same PID)
        answers /healthz and /readyz; SIGTERM stops it with exit 0."""
        port = free_port()
        process = subprocess.Popen([str(ENTRYPOINT)], cwd=tmp_path,
                                   env=self._env(tmp_path, SYNCSVC_HTTP__PORT=str(port)),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            answers = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(answers) < 2:
                assert process.poll() is None, process.communicate()
                for path in ("/healthz", "/readyz"):
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                                    timeout=2) as response:
                            answers[path] = response.status
                    except OSError:
                        time.sleep(0.2)
            assert {"/healthz": 200, "/readyz": 200} == answers
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert 0 == process.returncode, err
        assert "schema at revision" in out
        assert (tmp_path / "store.db").is_file()

    def test_a_store_that_refuses_stops_before_serving(self, tmp_path: Path) -> None:
        """`db upgrade` failing DB_WAIT_ATTEMPTS times: exit 1, no server."""
        env = self._env(tmp_path, DB_WAIT_ATTEMPTS="1",
                        SYNCSVC_STORE__URL=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
        done = subprocess.run([str(ENTRYPOINT)], check=False, cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60)
        assert 1 == done.returncode
        assert "giving up" in done.stderr


@pytest.mark.parametrize("script", sorted((ROOT / "deploy").rglob("*.sh")), ids=lambda p: p.name)
def test_shell_scripts_parse(script: Path) -> None:
    """Every deploy script is valid POSIX sh (checked with dash) and executable."""
    shell = "dash" if subprocess.run(["which", "dash"], check=False, capture_output=True).returncode == 0 \
        else "sh"
    subprocess.run([shell, "-n", str(script)], check=True)
    assert os.access(script, os.X_OK)
