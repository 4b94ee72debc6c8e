"""Helpers for the monitor's tests: a local target server, a test CA, configs, binaries.

Kept out of conftest.py so tests import them by a name no other package's tests use.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import ipaddress
import json
import os
import shutil
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parents[3]
SERVICE = REPO / "services" / "synthetic-monitor"
PASSWORD = "s3cret-pass-42"
TOKEN = "tok-abc-123"


def require_binary(name: str, package: str) -> str:
    """Return the path of ``name``; skip (locally) or fail (CI=true) naming what is missing."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (Debian package {package}); install it and rerun"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- a test CA and certificates with a known expiry ---------------------------------------


@dataclass
class Certs:
    """Files of a test CA and a server certificate for 127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    not_after: dt.datetime


def make_certs(directory: Path, days_left: float) -> Certs:
    """Create a CA and a server certificate expiring ``days_left`` days from now."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lookout test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = (now + dt.timedelta(days=days_left)).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = write(directory / "ca.pem", ca.public_bytes(serialization.Encoding.PEM).decode())
    cert_file = write(
        directory / "server.pem", cert.public_bytes(serialization.Encoding.PEM).decode()
    )
    key_file = write(
        directory / "server.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )
    return Certs(ca_file, cert_file, key_file, not_after)


# --- a local target -------------------------------------------------------------------------


@dataclass
class Seen:
    """One request the target received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: _TargetHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def _reply(
        self,
        status: int,
        body: object = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Path", self.path)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:  # noqa: PLR0912 - one branch per route reads best in a fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.seen.append(
            Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        route = url.path
        if route == "/ok":
            self._reply(200, b"all good here", "text/plain")
        elif route == "/json":
            self._reply(200, {"items": [{"id": 3, "name": "mug"}], "count": 1, "ok": True})
        elif route == "/login":
            given = json.loads(body or b"{}")
            if given.get("password") == PASSWORD:
                self._reply(200, {"token": TOKEN})
            else:
                # Echoes the password on purpose: the monitor must redact it.
                self._reply(401, {"error": f"bad password {given.get('password')}"})
        elif route == "/me":
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                self._reply(200, {"email": "alice@example.com"})
            else:
                self._reply(401, {"error": "no token"})
        elif route == "/session":
            self._reply(200, {"ok": True}, headers={"Set-Cookie": "session=sess-42; Path=/"})
        elif route == "/logout":
            self._reply(204)
        elif route == "/slow":
            time.sleep(float(query.get("ms", "100")) / 1000)
            self._reply(200, b"slow", "text/plain")
        elif route == "/hang":
            self.server.release.wait(timeout=30)
            self._reply(200, b"late", "text/plain")
        elif route.startswith("/status/"):
            self._reply(int(route.rsplit("/", 1)[1]), {"status": route})
        elif route == "/flaky":
            key = query.get("key", "default")
            with self.server.lock:
                count = self.server.counters.get(key, 0) + 1
                self.server.counters[key] = count
            if count <= int(query.get("fail", "1")):
                self._reply(503, {"attempt": count})
            else:
                self._reply(200, {"attempt": count})
        else:
            self._reply(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class _TargetHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.counters: dict[str, int] = {}


class Target:
    """A local HTTP(S) server in a thread with fixed routes (/ok, /json, /login, /hang...)."""

    def __init__(self, certs: Certs | None = None) -> None:
        """Serve plain HTTP, or HTTPS with ``certs``."""
        self.server = _TargetHTTPServer()
        self.scheme = "http"
        if certs is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certs.cert_file, certs.key_file)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def seen(self) -> list[Seen]:
        """Return the requests received so far."""
        return self.server.seen

    @property
    def port(self) -> int:
        """Return the port."""
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """Return the base URL."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> Target:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@contextmanager
def target(certs: Certs | None = None) -> Iterator[Target]:
    """Run a ``Target`` for the block."""
    with Target(certs) as server:
        yield server


# --- a local DNS server ---------------------------------------------------------------------


class DnsServer:
    """A UDP nameserver on loopback answering A queries from a dict (else NXDOMAIN)."""

    def __init__(self, records: dict[str, str]) -> None:
        """Answer ``name. -> address`` for each record."""
        self.records = {k.rstrip(".") + ".": v for k, v in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        """Return the UDP port."""
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        import dns.message
        import dns.rcode
        import dns.rrset

        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            address = self.records.get(question.name.to_text())
            if address is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", address))
            self.sock.sendto(response.to_wire(), peer)

    def __enter__(self) -> DnsServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


# --- the demo shop, from the workspace ------------------------------------------------------


def demo_support() -> ModuleType:
    """Return demo-app/tests/demo_support.py as a module (the shop's own test helpers)."""
    module = sys.modules.get("demo_support")
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(
        "demo_support", REPO / "demo-app" / "tests" / "demo_support.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_support"] = module
    spec.loader.exec_module(module)
    return module


def wait_for(check: Any, description: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns a truthy value; fail naming ``description``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # the last error is reported on timeout
            last = error
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {description} (last: {last!r})")
