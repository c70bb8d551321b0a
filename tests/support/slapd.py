"""A private OpenLDAP server (slapd) on loopback ports, for integration tests and benchmarks.

:meth:`Slapd.create` renders ``deploy/slapd/config.ldif.template`` (the same configuration
docker-compose uses) into a work directory, loads it with ``slapadd -n0``, loads the seed LDIF with
``slapadd -q`` and starts slapd as the current user on ``ldap://127.0.0.1:<port>/`` and
``ldaps://127.0.0.1:<tls_port>/``. StartTLS works on the plain port. Writes go through the
ldap-utils commands bound as the rootdn, so tests change the directory the way an admin would and
slapd maintains entryCSN, modifyTimestamp and the syncprov session log as in production.

Seed LDIF contract: the seed should hold the whole tree (the suffix entry and every parent before
its children, as ``tests/fixtures/ldif/base.ldif`` and ``bench/gen_ldif.py`` output do). The
harness adds the suffix entry and ``ou=services`` only when the seed lacks them, and always adds
the service account (its password is the harness's, so a seed must not define it).

slapd's own log (``-d stats``: one line per operation, and every startup error) goes to
``<workdir>/slapd.log``; set ``SYNCSVC_TEST_SLAPD_DEBUG`` to another ``-d`` level to change it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from types import TracebackType

from tests.support.tls import TlsFiles, session_tls_files

__all__ = [
    "REQUIRED_TOOLS",
    "SLAPD_CONFIG_DIR",
    "Slapd",
    "SlapdError",
    "find_tool",
    "ldif_line",
    "missing_tools",
    "ssha",
]

_ROOT = Path(__file__).resolve().parents[2]
SLAPD_CONFIG_DIR = _ROOT / "deploy" / "slapd"
"""``deploy/slapd``: the configuration templates shared with docker-compose."""

REQUIRED_TOOLS = (
    "slapd", "slapadd", "ldapmodify", "ldapsearch", "openssl",
)  # fmt: skip
"""Commands the harness runs; Debian packages slapd, ldap-utils and openssl provide them."""

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")  # slapd lives here, often off a user's PATH
_MODULE_DIRS = (
    "/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/local/libexec/openldap",
)  # fmt: skip
_SCHEMA_DIRS = ("/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
_START_TIMEOUT = 10.0
_TOOL_TIMEOUT = 120.0
# An anonymous simple BindRequest (messageID 1, version 3) and an UnbindRequest, BER-encoded.
_ANONYMOUS_BIND = bytes.fromhex("300c020101600702010304008000")
_UNBIND = bytes.fromhex("30050201024200")
# RFC 2849 SAFE-STRING: ASCII without NUL/CR/LF, not starting with space, ':' or '<'. A trailing
# space is legal but lost by many readers, so such values are base64-encoded too.
_LDIF_SAFE = re.compile(
    r"(?:[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f]"  # SAFE-INIT-CHAR
    r"[\x01-\x09\x0b\x0c\x0e-\x7f]*(?<! ))?"  # SAFE-CHARs, no trailing space
)


class SlapdError(RuntimeError):
    """slapd or one of the ldap-utils commands failed; the message carries its output."""


def find_tool(name: str) -> str | None:
    """The path of the command *name*, also looking in the sbin directories."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    return shutil.which(name, path=path)


def missing_tools() -> list[str]:
    """The commands of :data:`REQUIRED_TOOLS` that are not installed."""
    return [name for name in REQUIRED_TOOLS if find_tool(name) is None]


def ldif_line(attribute: str, value: str | bytes) -> str:
    """One LDIF ``attr: value`` line, base64-encoded (``attr:: ...``) when RFC 2849 requires it."""
    if isinstance(value, str) and _LDIF_SAFE.fullmatch(value):
        return f"{attribute}: {value}"
    raw = value.encode() if isinstance(value, str) else value
    return f"{attribute}:: {base64.b64encode(raw).decode()}"


def ssha(password: str) -> str:
    """An OpenLDAP ``{SSHA}`` hash of *password* (what ``slappasswd`` produces)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _normalize_dn(dn: str) -> str:
    return ",".join(rdn.strip() for rdn in dn.strip().lower().split(","))


def _seed_dns(path: Path) -> Iterator[str]:
    """The normalized DNs in an LDIF file, read line by line (the file may be large)."""
    logical = ""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.startswith(" "):  # RFC 2849 continuation of the previous line
                logical += line[1:]
                continue
            if logical.lower().startswith("dn:"):
                yield _decode_dn(logical)
            logical = line
    if logical.lower().startswith("dn:"):
        yield _decode_dn(logical)


def _decode_dn(line: str) -> str:
    value = line[3:]
    if value.startswith(":"):
        return _normalize_dn(base64.b64decode(value[1:].strip()).decode())
    return _normalize_dn(value)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_dir(candidates: tuple[str, ...], marker: str) -> Path:
    for candidate in candidates:
        if (Path(candidate) / marker).exists():
            return Path(candidate)
    raise SlapdError(f"no {marker} in any of {', '.join(candidates)}: is slapd installed?")


def _run(args: list[str], *, stdin: str | None = None, what: str) -> str:
    proc = subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=_TOOL_TIMEOUT,
        env={**os.environ, "LDAPNOINIT": "1"},  # ignore ~/.ldaprc and /etc/ldap/ldap.conf
    )
    if proc.returncode != 0:
        raise SlapdError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc.stdout


@dataclass
class Slapd:
    """A private slapd in *workdir*, listening on 127.0.0.1 only.

    Mutable on purpose (unlike syncsvc's frozen dataclasses): it owns a running process.
    Usable as a context manager that stops the server on exit.
    """

    workdir: Path
    port: int
    tls_port: int
    ca_file: Path
    base_dn: str = "dc=example,dc=com"
    admin_dn: str = "cn=admin,dc=example,dc=com"
    admin_password: str = "admin-secret"
    service_dn: str = "cn=syncsvc,ou=services,dc=example,dc=com"
    service_password: str = "service-secret"
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The plain LDAP URL (StartTLS available)."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        """The LDAP-over-TLS URL; the certificate verifies against :attr:`ca_file`."""
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def config_dir(self) -> Path:
        """The cn=config directory (``slapd -F``)."""
        return self.workdir / "slapd.d"

    @property
    def data_dir(self) -> Path:
        """The mdb database directory."""
        return self.workdir / "data"

    @property
    def log_file(self) -> Path:
        """slapd's log (stdout and stderr of the process)."""
        return self.workdir / "slapd.log"

    @property
    def running(self) -> bool:
        """Whether the slapd process this object started is alive."""
        return self._process is not None and self._process.poll() is None

    @classmethod
    def create(
        cls, workdir: Path, seed_ldif: str | Path, *, tls: TlsFiles | None = None
    ) -> Slapd:
        """Configure, seed and start a new slapd in *workdir* (created if needed, must be empty).

        *seed_ldif* is a path to an LDIF file, or LDIF text when given as ``str``.
        """
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise SlapdError(f"{workdir} is not empty")
        if isinstance(seed_ldif, str):
            seed_path = workdir / "seed-input.ldif"
            seed_path.write_text(seed_ldif, encoding="utf-8")
        else:
            seed_path = Path(seed_ldif)
        tls = tls or session_tls_files()
        server = cls(workdir=workdir, port=0, tls_port=0, ca_file=tls.ca_file)
        server._configure(tls)
        server._load_seed(seed_path)
        server._start_on_free_ports()
        return server

    @classmethod
    def generated(cls, workdir: Path, *, users: int, groups: int) -> Slapd:
        """A new slapd in *workdir* seeded with bench/gen_ldif.py's directory of that size
        (seed 1: the same entries each time)."""
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        seed = workdir / "generated.ldif"
        subprocess.run([sys.executable, str(_ROOT / "bench" / "gen_ldif.py"), "--users",
                        str(users), "--groups", str(groups), "-o", str(seed)], check=True)
        return cls.create(workdir / "slapd", seed)

    def _configure(self, tls: TlsFiles) -> None:
        self.config_dir.mkdir()
        self.data_dir.mkdir()
        password_file = self.workdir / "admin.pw"
        password_file.touch(mode=0o600)
        password_file.write_text(self.admin_password)  # no newline: ldap-utils -y reads it all
        template = Template((SLAPD_CONFIG_DIR / "config.ldif.template").read_text())
        config = template.substitute(
            SLAPD_MODULE_DIR=_first_dir(_MODULE_DIRS, "back_mdb.so"),
            SLAPD_SCHEMA_DIR=_first_dir(_SCHEMA_DIRS, "core.ldif"),
            SLAPD_RUN_DIR=self.workdir,
            SLAPD_DATA_DIR=self.data_dir,
            SLAPD_SUFFIX=self.base_dn,
            SLAPD_ROOT_DN=self.admin_dn,
            SLAPD_ROOT_PW=ssha(self.admin_password),
            SLAPD_SERVICE_DN=self.service_dn,
            SLAPD_TLS_CA=tls.ca_file,
            SLAPD_TLS_CERT=tls.cert_file,
            SLAPD_TLS_KEY=tls.key_file,
        )
        config_ldif = self.workdir / "config.ldif"
        config_ldif.write_text(config)
        _run(
            [self._tool("slapadd"), "-n0", "-F", str(self.config_dir), "-l", str(config_ldif)],
            what="slapadd of cn=config",
        )

    def _load_seed(self, seed_path: Path) -> None:
        present = set(_seed_dns(seed_path))
        suffix = _normalize_dn(self.base_dn)
        services = _normalize_dn(self.service_dn.split(",", 1)[1])
        if _normalize_dn(self.service_dn) in present:
            raise SlapdError(f"{seed_path} defines {self.service_dn}: the harness adds it")
        combined = self.workdir / "seed.ldif"
        with combined.open("w", encoding="utf-8") as out:
            if suffix not in present:
                rdn_value = self.base_dn.split(",", 1)[0].split("=", 1)[1]
                out.write(
                    f"dn: {self.base_dn}\nobjectClass: dcObject\nobjectClass: organization\n"
                    f"dc: {rdn_value}\no: {rdn_value}\n\n"
                )
            with seed_path.open(encoding="utf-8") as seed:
                shutil.copyfileobj(seed, out)
            out.write("\n\n")
            if services not in present:
                ou = services.split(",", 1)[0].split("=", 1)[1]
                out.write(f"dn: {services}\nobjectClass: organizationalUnit\nou: {ou}\n\n")
            account = Template((SLAPD_CONFIG_DIR / "service-account.ldif.template").read_text())
            out.write(
                account.substitute(
                    SLAPD_SERVICE_DN=self.service_dn,
                    SLAPD_SERVICE_CN=self.service_dn.split(",", 1)[0].split("=", 1)[1],
                    SLAPD_SERVICE_PW=ssha(self.service_password),
                )
            )
        _run(
            [
                self._tool("slapadd"), "-q", "-w", "-F", str(self.config_dir),
                "-b", self.base_dn, "-l", str(combined),
            ],
            what=f"slapadd of {seed_path}",
        )  # fmt: skip

    def _start_on_free_ports(self) -> None:
        # A free port can be taken between our probe and slapd's bind: retry on a fresh pair.
        for attempt in range(3):
            self.port, self.tls_port = _free_port(), _free_port()
            try:
                self.start()
                return
            except SlapdError:
                if attempt == 2 or "Address already in use" not in self.log_tail():
                    raise

    def start(self) -> None:
        """Start slapd and return once it answers an LDAP bind; raise with its log if it cannot."""
        if self.running:
            return
        debug = os.environ.get("SYNCSVC_TEST_SLAPD_DEBUG", "stats")
        listen = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/"
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [self._tool("slapd"), "-F", str(self.config_dir), "-h", listen, "-d", debug],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise SlapdError(f"slapd exited with {code} at startup; log:\n{self.log_tail()}")
            if self._answers_bind() and self._accepts(self.tls_port):
                return
            time.sleep(0.01)
        self.stop()
        raise SlapdError(f"slapd did not answer within {_START_TIMEOUT} s; log:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL after 10 s) and wait until the process is gone."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def pid(self) -> int:
        """The process id of the running slapd (for fault tests that signal it)."""
        if self._process is None or self._process.poll() is not None:
            raise SlapdError("slapd is not running")
        return self._process.pid

    def kill(self) -> None:
        """SIGKILL slapd, as a crash would: no shutdown, no flush; :meth:`start` brings it back."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> Slapd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def modify(self, ldif: str) -> None:
        """Apply LDIF change records (changetype add/modify/delete/modrdn) as the admin."""
        self._admin_tool("ldapmodify", [], stdin=ldif)

    def add(self, ldif: str, *, relax: bool = False) -> None:
        """Add the entries of *ldif* (plain content records) as the admin.

        With *relax* (the Relax Rules control) operational values such as ``entryUUID`` are kept
        as given: entries deleted earlier come back as the same entries.
        """
        self._admin_tool("ldapmodify", ["-a", "-e", "relax"] if relax else ["-a"], stdin=ldif)

    def delete(self, dn: str) -> None:
        """Delete the leaf entry *dn*."""
        self.modify(f"{ldif_line('dn', dn)}\nchangetype: delete\n")

    def rename(self, dn: str, new_rdn: str, new_superior: str | None = None) -> None:
        """Rename *dn* to *new_rdn* (dropping the old RDN value), maybe under *new_superior*."""
        lines = [ldif_line("dn", dn), "changetype: modrdn", ldif_line("newrdn", new_rdn)]
        lines.append("deleteoldrdn: 1")
        if new_superior is not None:
            lines.append(ldif_line("newsuperior", new_superior))
        self.modify("\n".join(lines) + "\n")

    def search(
        self, filter: str, attrs: list[str], *, base: str | None = None, scope: str = "sub"
    ) -> str:
        """``ldapsearch -LLL`` output (unwrapped lines) of a search as the admin, for asserts."""
        args = ["-LLL", "-o", "ldif-wrap=no", "-b", base or self.base_dn, "-s", scope]
        args += [filter, *attrs]
        return self._admin_tool("ldapsearch", args)

    def _admin_tool(self, tool: str, args: list[str], *, stdin: str | None = None) -> str:
        command = [
            self._tool(tool), "-x", "-H", self.url,
            "-D", self.admin_dn, "-y", str(self.workdir / "admin.pw"), *args,
        ]  # fmt: skip
        return _run(command, stdin=stdin, what=f"{tool} {' '.join(args)}".strip())

    @staticmethod
    def _tool(name: str) -> str:
        path = find_tool(name)
        if path is None:
            raise SlapdError(f"{name} is not installed: apt-get install slapd ldap-utils")
        return path

    def _answers_bind(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(_ANONYMOUS_BIND)
                reply = sock.recv(64)
                sock.sendall(_UNBIND)
        except OSError:
            return False
        return reply[:1] == b"\x30"  # a BER SEQUENCE: the BindResponse

    def _accepts(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 60) -> str:
        """The last *lines* lines of slapd's log, for error messages and failed-test reports."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
