"""Inbound authentication: bearer token (default), basic, or HMAC-SHA256 with a timestamp.

Secrets are compared in constant time and never logged. HMAC requests carry
``X-Relay-Timestamp`` (Unix seconds) and ``X-Relay-Signature: sha256=<hex>`` over
``<timestamp>.<body>``; a timestamp outside the window is refused (replay protection).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass, field

from webhook_relay.settings import Settings

__all__ = ["Authenticator"]


@dataclass(frozen=True)
class Authenticator:
    """Checks requests against the configured mode."""

    mode: str
    # repr=False: a repr (a stack frame's locals in an error report) never shows a secret.
    token: bytes = field(default=b"", repr=False)
    username: bytes = b""
    password: bytes = field(default=b"", repr=False)
    hmac_secret: bytes = field(default=b"", repr=False)
    window_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """Read the secrets the mode needs (files preferred to variables)."""
        mode = settings.auth_mode
        if mode == "bearer":
            return cls(mode, token=settings.secret("token").encode())
        if mode == "basic":
            return cls(
                mode,
                username=(settings.basic_username or "").encode(),
                password=settings.secret("basic_password").encode(),
            )
        if mode == "hmac":
            return cls(
                mode,
                hmac_secret=settings.secret("hmac_secret").encode(),
                window_seconds=settings.hmac_window_seconds,
            )
        return cls(mode)

    def check_headers(self, authorization: str | None) -> str | None:
        """Return why the headers fail bearer/basic auth, or None when they pass."""
        if self.mode == "bearer":
            scheme, _, credentials = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not credentials:
                return "missing bearer token (Authorization: Bearer <token>)"
            if not hmac.compare_digest(credentials.strip().encode(), self.token):
                return "invalid bearer token"
        elif self.mode == "basic":
            scheme, _, credentials = (authorization or "").partition(" ")
            if scheme.lower() != "basic" or not credentials:
                return "missing basic credentials"
            try:
                user, _, password = base64.b64decode(credentials, validate=True).partition(b":")
            except (binascii.Error, ValueError):
                return "malformed basic credentials"
            user_ok = hmac.compare_digest(user, self.username)
            if not (hmac.compare_digest(password, self.password) and user_ok):
                return "invalid basic credentials"
        return None

    def check_signature(
        self, timestamp: str | None, signature: str | None, body: bytes
    ) -> str | None:
        """Return why an HMAC-signed body fails, or None when it passes (or mode is not hmac)."""
        if self.mode != "hmac":
            return None
        if not timestamp or not signature:
            return "missing X-Relay-Timestamp or X-Relay-Signature"
        try:
            sent = float(timestamp)
        except ValueError:
            return "X-Relay-Timestamp is not a number of seconds"
        if abs(time.time() - sent) > self.window_seconds:
            return "X-Relay-Timestamp is outside the replay window"
        expected = (
            "sha256="
            + hmac.new(
                self.hmac_secret, timestamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
            return "invalid signature"
        return None
