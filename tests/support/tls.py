"""A throw-away certificate authority and a server certificate for loopback TLS tests.

The server certificate carries ``IP:127.0.0.1`` and ``DNS:localhost`` as subject alternative
names and is signed by the test CA, so a client verifies it only when it trusts
:attr:`TlsFiles.ca_file`.
Both are made with the ``openssl`` command (no Python crypto dependency) once per test process.
"""

from __future__ import annotations

import atexit
import functools
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsFiles", "make_tls_files", "session_tls_files"]

# EC keys: generating them is instant, where RSA-2048 costs ~0.1 s each.
_NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

_SERVER_EXTENSIONS = """\
subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files: the CA certificate clients trust, and the server's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is missing: apt-get install openssl")
    proc = subprocess.run(
        [openssl, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed:\n{proc.stderr}")


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a self-signed test CA and a 127.0.0.1/localhost server certificate in *directory*."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-new", *_NEW_KEY, "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "3650", "-subj", "/CN=syncsvc test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *_NEW_KEY, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(_SERVER_EXTENSIONS)
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", f"0x{secrets.token_hex(16)}", "-days", "3650",
        "-extfile", "server.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return TlsFiles(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
    )


@functools.cache
def session_tls_files() -> TlsFiles:
    """The test CA and server certificate shared by every slapd this process starts."""
    directory = Path(tempfile.mkdtemp(prefix="syncsvc-test-tls-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return make_tls_files(directory)
