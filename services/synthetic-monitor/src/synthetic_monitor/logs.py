"""JSON logs on stdout: one event per line, with trace ids, secrets scrubbed.

Every line carries ``timestamp``, ``level``, ``logger``, ``message``, ``service`` and, inside
a run, ``trace_id``/``span_id``; ``extra=`` values become fields (``journey``, ``step``, ...).
Before a line is written, every secret value the process has read (``secrets.REDACTOR``) is
replaced, and fields whose names look sensitive (password, token, authorization, cookie,
secret) are replaced whole. Tests read lines with ``capture_json_logs()``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from opentelemetry import trace

from synthetic_monitor.secrets import REDACTED, redact

__all__ = ["JsonFormatter", "RedactFilter", "capture_json_logs", "configure_logging"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_SENSITIVE = re.compile(r"pass(word|wd)?|secret|token|authorization|cookie|api[_-]?key", re.I)


def _clean(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {
            str(k): REDACTED if _SENSITIVE.search(str(k)) else _clean(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return redact(str(value))


class RedactFilter(logging.Filter):
    """Redact a record in place, so every handler after it (OTLP too) sees no secret.

    Extras that are None are dropped: OTLP attributes cannot hold them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the message and the extras; keep every record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!s} (arguments: {record.args!r})"
        record.msg, record.args = redact(message), None
        for key, value in list(vars(record).items()):
            if key in _STANDARD or key.startswith("otel"):
                continue
            if value is None:
                delattr(record, key)
            else:
                setattr(record, key, REDACTED if _SENSITIVE.search(key) else _clean(value))
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one scrubbed JSON object on one line."""

    def __init__(self, service: str) -> None:
        """Stamp every line with ``service``."""
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line (without the newline)."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!s} (arguments: {record.args!r})"
        payload: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
            "service": self.service,
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            payload["trace_id"] = format(span_context.trace_id, "032x")
            payload["span_id"] = format(span_context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in payload and value is not None:
                payload[key] = REDACTED if _SENSITIVE.search(key) else value
        if record.exc_info and record.exc_info[1] is not None:
            payload["exception"] = {
                "type": type(record.exc_info[1]).__name__,
                "message": str(record.exc_info[1]),
                "stack": self.formatException(record.exc_info),
            }
        return json.dumps(_clean(payload), default=str, ensure_ascii=False)


def configure_logging(
    service: str,
    level: str = "INFO",
    stream: TextIO | None = None,
    extra_handlers: Sequence[logging.Handler] = (),
) -> logging.Handler:
    """Send every record to stdout as JSON (and to ``extra_handlers``), redacted.

    Replaces the root logger's handlers; each gets a ``RedactFilter`` first.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    for each in (handler, *extra_handlers):
        each.addFilter(RedactFilter())
        root.addHandler(each)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[dict[str, Any]]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@contextmanager
def capture_json_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Collect the JSON lines written while the block runs, each parsed into a dict."""
    lines: list[dict[str, Any]] = []
    handler = _ListHandler(lines)
    handler.setFormatter(JsonFormatter("test"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
