"""The interface every step type implements, and what it is given and returns."""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol

import httpx
from cryptography import x509

from synthetic_monitor.conditions import Observation
from synthetic_monitor.config.model import TlsOptions

__all__ = ["StepContext", "StepExecutor", "StepOutcome", "cert_expiry", "ssl_context"]

_CONTEXTS: dict[tuple[object, ...], ssl.SSLContext] = {}
#: Transports per event loop (their locks belong to one loop), then per TLS option set.
_TRANSPORTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[object, ...], httpx.AsyncHTTPTransport]
] = weakref.WeakKeyDictionary()


def _transport(options: TlsOptions) -> httpx.AsyncHTTPTransport:
    """Return the process's transport for these TLS options (one per option set).

    Connections are never kept alive, so every request opens its own connection (what a
    probe must measure, as blackbox_exporter does), and the pool has no size limit, so a
    journey never waits for another's connection. Sharing the transport saves building one
    per run (about a sixth of a simple check's CPU time).
    """
    key = (options.verify, options.ca_file, options.client_cert, options.client_key)
    transports = _TRANSPORTS.setdefault(asyncio.get_running_loop(), {})
    transport = transports.get(key)
    if transport is None:
        transport = httpx.AsyncHTTPTransport(
            verify=ssl_context(options),
            trust_env=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        )
        transports[key] = transport
    return transport


def ssl_context(options: TlsOptions) -> ssl.SSLContext:
    """Return a (cached) client SSL context for ``options``: building one costs milliseconds."""
    key = (options.verify, options.ca_file, options.client_cert, options.client_key)
    context = _CONTEXTS.get(key)
    if context is None:
        context = ssl.create_default_context(
            cafile=str(options.ca_file) if options.ca_file else None
        )
        if not options.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if options.client_cert is not None:
            context.load_cert_chain(
                str(options.client_cert),
                str(options.client_key) if options.client_key else None,
            )
        _CONTEXTS[key] = context
    return context


def cert_expiry(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> float | None:
    """Return the Unix time at which the peer's certificate expires (None without one).

    Read in binary form and parsed with ``cryptography``: ``getpeercert()`` returns an
    empty dict when verification is off, and expiry matters most for self-signed targets.
    """
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    certificate = x509.load_der_x509_certificate(der)
    return certificate.not_valid_after_utc.astimezone(UTC).timestamp()


@dataclass
class StepOutcome:
    """What a step observed (for conditions) plus the raw pieces extractions need."""

    observation: Observation
    error: str | None = None
    cert_expiry: float | None = None
    json_body: Any = None


@dataclass
class StepContext:
    """What a step may use: the values so far, propagation headers, the run's HTTP clients."""

    values: Mapping[str, object]
    timeout: float
    propagation_headers: dict[str, str] = field(default_factory=dict)
    clients: dict[tuple[object, ...], httpx.AsyncClient] = field(default_factory=dict)
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)
    user_agent: str = "lookout-synthetic-monitor"

    def client(self, options: TlsOptions) -> httpx.AsyncClient:
        """Return the run's client for these TLS options (cookies are shared by all).

        A run's clients are light: they hold the run's cookies and share the process's
        transport, which holds no idle connection, so there is nothing to close.
        """
        key = (options.verify, options.ca_file, options.client_cert, options.client_key)
        client = self.clients.get(key)
        if client is None:
            # trust_env=False: probes go straight to their target, never through a proxy
            # picked up from the environment, so what is measured is the target.
            client = httpx.AsyncClient(
                transport=_transport(options), trust_env=False, cookies=self.cookies
            )
            self.clients[key] = client
        return client

    async def aclose(self) -> None:
        """Forget the run's clients (closing one would close the shared transport)."""
        self.clients.clear()


class StepExecutor(Protocol):
    """Runs one step of one type and reports what it saw; never raises for target errors."""

    async def execute(self, step: Any, context: StepContext) -> StepOutcome:
        """Perform the step within ``context.timeout`` seconds."""
        ...
