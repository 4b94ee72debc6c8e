"""Secrets: read at run time from an environment variable or a file, and never written out.

Every value read through ``resolve_secrets`` is registered with the process-wide registry of
the shared scrubber (``lookout_telemetry.scrub.KNOWN_SECRETS``): the JSON logs, the OTLP log
records and the error reports scrub it like any other secret, and step errors, condition
details, reports and stored history pass through ``redact``, so the value shows as
``[REDACTED]`` wherever it would have appeared (a login error that echoes the password, a URL
with a token in its query).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lookout_telemetry.scrub import KNOWN_SECRETS, REDACTED, SecretValues
from synthetic_monitor.config.model import SecretRef

__all__ = ["REDACTED", "REDACTOR", "SecretError", "SecretValues", "redact", "resolve_secrets"]

#: The secret values this process has read (the shared scrubber's registry).
REDACTOR = KNOWN_SECRETS


class SecretError(Exception):
    """A secret cannot be read; the message names the variable or file (never the value)."""


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
