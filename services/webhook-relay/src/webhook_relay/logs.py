"""JSON logs on stdout, one event per line, with trace ids; secrets scrubbed first.

Adapted from the demo app's telemetry/logs.py (same field names, so one Loki query reads
both): ``timestamp``, ``level``, ``logger``, ``message``, ``service``, ``trace_id``,
``span_id``, then the record's ``extra=`` fields. Keys that name a secret (token, secret,
password, authorization, routing_key, webhook_url, ...) are replaced with ``[REDACTED]``,
and bearer tokens and URL credentials inside text are masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

from opentelemetry import trace

__all__ = ["REDACTED", "JsonFormatter", "configure_logging", "scrub", "scrub_text"]

REDACTED = "[REDACTED]"
_SENSITIVE = re.compile(
    r"(pass(word)?|secret|token|authorization|api[_-]?key|routing[_-]?key|webhook[_-]?url|cookie|signature)",
    re.IGNORECASE,
)
_TEXT_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"(?i)(://)[^/@\s:]+:[^/@\s]+@"), r"\1" + REDACTED + "@"),
    (
        re.compile(
            r"(?i)(hooks\.slack\.com/services/|discord(?:app)?\.com/api/webhooks/)[^\s\"']+"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\b(token|secret|password|routing_key)=([^&\s]+)"), r"\1=" + REDACTED),
)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def scrub_text(text: str) -> str:
    """Mask credentials inside free text."""
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any, key: str = "") -> Any:
    """Return ``value`` with secrets masked, recursively."""
    if key and _SENSITIVE.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {str(name): scrub(item, str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return scrub_text(str(value))


class JsonFormatter(logging.Formatter):
    """Format a record as one scrubbed JSON object on one line."""

    def __init__(self, service: str) -> None:
        """Stamp every line with ``service``."""
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        payload: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
            "service": self.service,
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            payload["trace_id"] = format(context.trace_id, "032x")
            payload["span_id"] = format(context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in payload:
                payload[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            payload["exception"] = {
                "type": type(record.exc_info[1]).__name__,
                "message": str(record.exc_info[1]),
                "stack": self.formatException(record.exc_info),
            }
        return json.dumps(scrub(payload), default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger's records to stdout as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
