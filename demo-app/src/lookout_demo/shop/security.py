"""Failed-login accounting and brute-force detection, shared across replicas via the cache.

Failures are counted per account and per client address in a sliding-from-first-failure
window (a cache counter with a TTL). Reaching the threshold is a brute-force detection: it
is counted, logged once as a security event, and further attempts on that account or from
that address are refused until the window ends.
"""

from __future__ import annotations

import hashlib
import logging

from lookout_demo.storage.cache import Cache
from lookout_demo.telemetry.metrics import SecurityMetrics

__all__ = ["LoginGuard", "fingerprint"]

security_log = logging.getLogger("lookout_demo.security")


def fingerprint(value: str) -> str:
    """Return a short stable hash, so logs can correlate an account without naming it."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:16]


class LoginGuard:
    """Count failed logins; tell when an account or address is blocked."""

    def __init__(
        self,
        cache: Cache,
        metrics: SecurityMetrics | None,
        *,
        max_failures: int,
        window_seconds: float,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.max_failures = max_failures
        self.window_seconds = window_seconds

    @staticmethod
    def _keys(email: str, client: str) -> dict[str, str]:
        return {
            "account": f"loginfail:account:{fingerprint(email)}",
            "client": f"loginfail:client:{fingerprint(client)}",
        }

    async def blocked(self, email: str, client: str) -> str | None:
        """Return the scope ("account" or "client") that is blocked, or None."""
        for scope, key in self._keys(email, client).items():
            count = await self.cache.get(key)
            if count is not None and int(count) >= self.max_failures:
                return scope
        return None

    async def failed(self, email: str, client: str, reason: str) -> None:
        """Record a failed login; detect crossing the threshold."""
        if self.metrics is not None:
            self.metrics.logins.labels("failure").inc()
            self.metrics.login_failures.labels(reason).inc()
        security_log.warning(
            "login failed",
            extra={
                "security": True,
                "event": "login_failed",
                "reason": reason,
                "account": fingerprint(email),
                "client": fingerprint(client),
            },
        )
        for scope, key in self._keys(email, client).items():
            count = await self.cache.incr(key, self.window_seconds)
            if count == self.max_failures:
                if self.metrics is not None:
                    self.metrics.bruteforce.labels(scope).inc()
                security_log.error(
                    "brute-force login attempt detected",
                    extra={
                        "security": True,
                        "event": "bruteforce_detected",
                        "scope": scope,
                        "failures": count,
                        "window_seconds": self.window_seconds,
                        "account": fingerprint(email),
                        "client": fingerprint(client),
                    },
                )

    async def refused(self, email: str, client: str, scope: str) -> None:
        """Record an attempt refused because its account or address is blocked."""
        if self.metrics is not None:
            self.metrics.logins.labels("blocked").inc()
            self.metrics.login_failures.labels("blocked").inc()
        security_log.warning(
            "login refused: too many failures",
            extra={
                "security": True,
                "event": "login_blocked",
                "scope": scope,
                "account": fingerprint(email),
                "client": fingerprint(client),
            },
        )

    async def succeeded(self, email: str) -> None:
        """Record a successful login; the account's failure count starts again."""
        if self.metrics is not None:
            self.metrics.logins.labels("success").inc()
        await self.cache.delete(self._keys(email, "")["account"])
