"""Secrets: read at run time from an environment variable or a file, and never written out.

Every value read through ``resolve_secrets`` is registered with the process-wide
``REDACTOR``; the JSON log formatter, step errors, condition details, reports and stored
history all pass through ``redact`` so the value shows as ``[REDACTED]`` wherever it would
have appeared (a login error that echoes the password, a URL with a token in its query).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from synthetic_monitor.config.model import SecretRef

__all__ = ["REDACTED", "REDACTOR", "Redactor", "SecretError", "redact", "resolve_secrets"]

REDACTED = "[REDACTED]"
#: Values shorter than this are not redacted: replacing every "a" would wreck each line.
_MIN_LENGTH = 4


class SecretError(Exception):
    """A secret cannot be read; the message names the variable or file (never the value)."""


class Redactor:
    """The set of secret values seen by this process; replaces them in any text."""

    def __init__(self) -> None:
        """Start with no secret."""
        self._values: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        """Remember ``value`` as a secret."""
        if len(value) >= _MIN_LENGTH and value not in self._values:
            with self._lock:
                self._values = self._values | {value}

    def redact(self, text: str) -> str:
        """Return ``text`` with every known secret replaced by ``[REDACTED]``."""
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return text


REDACTOR = Redactor()


def redact(text: str) -> str:
    """Return ``text`` with every secret this process has read replaced."""
    return REDACTOR.redact(text)


def resolve_secrets(
    refs: Mapping[str, SecretRef], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Read each secret; register the values for redaction; raise SecretError if one is missing."""
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for name, ref in refs.items():
        if ref.env is not None:
            if ref.env not in env:
                msg = f"secret {name!r}: environment variable {ref.env} is not set"
                raise SecretError(msg)
            value = env[ref.env]
        else:
            try:
                value = Path(str(ref.file)).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as error:
                msg = f"secret {name!r}: cannot read {ref.file}: {error.strerror}"
                raise SecretError(msg) from error
        REDACTOR.add(value)
        values[name] = value
    return values
