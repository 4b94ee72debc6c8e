"""Password hashing with PBKDF2-SHA256 from the standard library.

Written on hashlib rather than passlib/argon2-cffi: the demo needs no extra native
dependency, PBKDF2 is the algorithm NIST SP 800-132 names, and the iteration count comes
from settings so load tests can keep logins cheap while production raises it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password"]

_SCHEME = "pbkdf2_sha256"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def hash_password(password: str, iterations: int) -> str:
    """Return ``pbkdf2_sha256$iterations$salt$hash`` for a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Tell whether a password matches a stored hash, in constant time."""
    try:
        scheme, iterations, salt_b64, digest_b64 = encoded.split("$")
        salt = base64.b64decode(salt_b64 + "=" * (-len(salt_b64) % 4))
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
    return hmac.compare_digest(_b64(digest), digest_b64)
