"""JSON logs on stdout for the standard ``logging`` module: one event per line, scrubbed.

``configure_logging()`` gives the root logger one stdout handler that writes a JSON object
per line (``JsonFormatter``), plus any extra handlers (the OpenTelemetry OTLP handler).
Every handler it installs gets the same three filters, in this order:

1. ``ContextFilter`` copies ``request_id`` and ``user_id`` from ``lookout_telemetry.context``
   onto the record, so the OTLP handler exports them as attributes too;
2. ``SamplingFilter`` drops health-check and metrics access lines and keeps a share of the
   successful ones (its decision is a pure function of the record, so every handler makes
   the same one);
3. ``ScrubFilter`` scrubs the record in place, so no handler sees a secret.

Filters sit on the handlers, not on a logger: a logger's filters do not apply to records
propagated from its children. Sampling runs before scrubbing so dropped lines cost nothing.

An access log is any logger named ``access`` or ``<something>.access`` (the demo's
``lookout_demo.access``; ``uvicorn.access`` is switched off); its records carry the extras
``path``, ``route``, ``method``, ``status`` (int) and ``duration_ms``. Any record with
``extra={"security": True}`` is a security event and is never sampled away.

Tests use ``capture_json_logs()`` to read the lines as dicts.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from types import TracebackType
from typing import Any, TextIO, TypeAlias

from opentelemetry import trace

from lookout_telemetry.context import request_id_var, user_id_var
from lookout_telemetry.scrub import REDACTED, is_sensitive_key, scrub, scrub_text

__all__ = [
    "QUIET_LOGGERS",
    "STANDARD_ATTRS",
    "ContextFilter",
    "JsonFormatter",
    "SamplingFilter",
    "ScrubFilter",
    "capture_json_logs",
    "configure_logging",
]

ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
)

#: Attributes every LogRecord has (or that logging and opentelemetry-instrumentation-logging
#: add); anything else on a record came from ``extra=``.
STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "otelTraceID",
    "otelSpanID",
    "otelServiceName",
    "otelTraceSampled",
    "taskName",
}
#: Fields of a JSON line that an ``extra=`` attribute of the same name does not replace.
#: Third-party loggers ``configure_logging`` holds at WARNING by default.
QUIET_LOGGERS: Mapping[str, int] = {"httpx": logging.WARNING, "httpcore": logging.WARNING}
_CORE_FIELDS = ("timestamp", "level", "logger", "message", "service", "trace_id", "span_id")

_TRACE_ID_MASK = (1 << 64) - 1
_SPLITMIX_GAMMA = 0x9E3779B97F4A7C15
_SPLITMIX_MUL1 = 0xBF58476D1CE4E5B9
_SPLITMIX_MUL2 = 0x94D049BB133111EB


def _record_message(record: logging.LogRecord) -> str:
    """Return the record's formatted message, even when its arguments do not fit."""
    try:
        return record.getMessage()
    except Exception:  # a bad format string must not break the caller's log call
        return f"{record.msg!s} (arguments: {record.args!r})"


def _trace_ids(record: logging.LogRecord) -> tuple[int, int] | None:
    """Return the (trace id, span id) of the current span, or those stamped on the record."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return span_context.trace_id, span_context.span_id
    trace_hex = getattr(record, "otelTraceID", None)
    span_hex = getattr(record, "otelSpanID", None)
    if isinstance(trace_hex, str) and trace_hex != "0" and isinstance(span_hex, str):
        try:
            return int(trace_hex, 16), int(span_hex, 16)
        except ValueError:
            return None
    return None


def _jsonable(value: object) -> object:
    """Return ``value`` made of JSON types only (other objects become their ``str``)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """Format a record as one scrubbed JSON object on one line."""

    def __init__(self, service: str) -> None:
        """Stamp every line with ``service``."""
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line (without the newline)."""
        payload: dict[str, object] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _record_message(record),
            "service": self.service,
        }
        ids = _trace_ids(record)
        if ids is not None:
            payload["trace_id"] = format(ids[0], "032x")
            payload["span_id"] = format(ids[1], "016x")
        request_id, user_id = request_id_var.get(), user_id_var.get()
        if request_id is not None:
            payload["request_id"] = request_id
        if user_id is not None:
            payload["user_id"] = user_id
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRS and key not in payload:
                payload[key] = _jsonable(value)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            payload["exception"] = {
                "type": type(error).__name__,
                "message": str(error),
                "stack": record.exc_text or self.formatException(record.exc_info),
            }
        if record.stack_info:
            payload["stack_info"] = record.stack_info
        # Behind a ScrubFilter the record is clean already (the ids read here are ids): skip
        # the second pass, about a third of a line's cost. Alone, the formatter scrubs itself.
        if not _already_scrubbed(record):
            payload = scrub(payload)  # type: ignore[assignment]
        return json.dumps(payload, default=str, ensure_ascii=False)


class ContextFilter(logging.Filter):
    """Copy ``request_id`` and ``user_id`` from the request context onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp the ids that are set and not already on the record; keep every record."""
        for name, var in (("request_id", request_id_var), ("user_id", user_id_var)):
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


class ScrubFilter(logging.Filter):
    """Scrub a record in place, so every handler after it sees no secret; idempotent."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the message, the extras, the exception and the stack; keep every record."""
        if _already_scrubbed(record):  # the previous handler's filter did it: same record
            return True
        if not record.args and isinstance(record.msg, dict | list | tuple):
            record.msg = scrub(record.msg)  # a dict logged as the message keeps its shape
        else:
            record.msg = scrub_text(_record_message(record))
            record.args = None
        for key, value in list(vars(record).items()):
            if key not in STANDARD_ATTRS:
                # Other objects are made text first: the formatter writes their str(), which
                # scrub() would have passed through untouched (a URL, a settings object).
                setattr(record, key, REDACTED if is_sensitive_key(key) else scrub(_jsonable(value)))
        if record.exc_info is not None:
            _scrub_exception(record, record.exc_info)
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info)
        _last_scrubbed.record = record
        return True


#: The record this thread's ScrubFilter scrubbed last: a record goes through every handler in
#: turn on one thread, so the second handler (and the JSON formatter) can tell it is done
#: without an attribute on the record (every attribute would become an OTLP log attribute).
_last_scrubbed = threading.local()


def _already_scrubbed(record: logging.LogRecord) -> bool:
    """Return whether a ScrubFilter on this thread has just scrubbed ``record``."""
    return getattr(_last_scrubbed, "record", None) is record


_stand_in_classes: dict[type[BaseException], type[Exception]] = {}


def _stand_in_class(original: type[BaseException]) -> type[Exception]:
    """Return an Exception class that prints with the same name as ``original``."""
    stand_in = _stand_in_classes.get(original)
    if stand_in is None:
        stand_in = type(
            original.__name__,
            (Exception,),
            {"__module__": original.__module__, "__qualname__": original.__qualname__},
        )
        _stand_in_classes[original] = stand_in
    return stand_in


def _stand_in(error: BaseException, seen: set[int]) -> BaseException:
    """Return a copy of ``error`` and its causes with scrubbed messages and the same frames."""
    seen.add(id(error))
    copy = _stand_in_class(type(error))(scrub_text(str(error)))
    copy.__traceback__ = error.__traceback__
    copy.__suppress_context__ = error.__suppress_context__
    if error.__cause__ is not None and id(error.__cause__) not in seen:
        copy.__cause__ = _stand_in(error.__cause__, seen)
    if error.__context__ is not None and id(error.__context__) not in seen:
        copy.__context__ = _stand_in(error.__context__, seen)
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, list):
        copy.__notes__ = [scrub_text(str(note)) for note in notes]
    return copy


def _scrub_exception(record: logging.LogRecord, exc_info: ExcInfo) -> None:
    """Scrub the record's traceback text and, when it held a secret, its exception.

    The exception object itself belongs to the application and is left alone: when its
    text needs scrubbing, ``exc_info`` is pointed at a stand-in with the same type name,
    frames and causes, so handlers that format ``exc_info`` (the OTLP handler) see no secret.
    """
    exc_type, error, tb = exc_info
    if error is None:
        return
    formatted = record.exc_text or logging.Formatter().formatException(exc_info)
    scrubbed = scrub_text(formatted)
    record.exc_text = scrubbed
    if scrubbed != formatted and exc_type is not None:
        record.exc_info = (exc_type, _stand_in(error, set()), tb)


def _splitmix64(value: int) -> int:
    """Return a well-mixed 64-bit hash of ``value``."""
    value = (value + _SPLITMIX_GAMMA) & _TRACE_ID_MASK
    value = ((value ^ (value >> 30)) * _SPLITMIX_MUL1) & _TRACE_ID_MASK
    value = ((value ^ (value >> 27)) * _SPLITMIX_MUL2) & _TRACE_ID_MASK
    return value ^ (value >> 31)


class SamplingFilter(logging.Filter):
    """Drop probe access lines and keep a share ``rate`` of the successful access lines.

    Access records (logger ``access`` or ``*.access``) for ``/health...`` and ``/metrics`` are
    always dropped. One with ``status`` below 400 is kept when its trace id falls under
    ``rate``, by the rule OpenTelemetry's ``TraceIdRatioBased`` sampler uses (the low 64
    bits of the trace id below ``rate * 2**64``), so with the same ratio a sampled trace
    keeps its line; without a trace id the record's own identity is hashed instead. Errors
    (status 400 and above, or no status), records at WARNING or above, security events
    (``extra={"security": True}``) and records of other loggers are always kept.
    """

    def __init__(self, rate: float = 1.0) -> None:
        """Keep a share ``rate`` (0.0 to 1.0) of successful access lines."""
        super().__init__()
        if not 0.0 <= rate <= 1.0:
            msg = f"success sample rate must be between 0.0 and 1.0, got {rate!r}"
            raise ValueError(msg)
        self.rate = rate
        self._bound = round(rate * (1 << 64))

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether the record is written."""
        if not _is_access_logger(record.name):
            return True
        path = getattr(record, "path", None)
        if isinstance(path, str) and (path.startswith("/health") or path == "/metrics"):
            return False
        if record.levelno >= logging.WARNING or getattr(record, "security", False):
            return True
        status = getattr(record, "status", None)
        try:
            code = int(status) if isinstance(status, int | str) else None
        except ValueError:
            code = None
        if code is None or code >= 400:  # no status: the request did not complete
            return True
        return self.keep(record)

    def keep(self, record: logging.LogRecord) -> bool:
        """Return the sampling decision for a successful access record."""
        if self.rate >= 1.0:
            return True
        if self.rate <= 0.0:
            return False
        ids = _trace_ids(record)
        if ids is not None:
            return (ids[0] & _TRACE_ID_MASK) < self._bound
        # Same record, same answer: a handler after the first must agree with it.
        return _splitmix64(id(record) ^ int(record.created * 1e6)) < self._bound


@lru_cache(maxsize=256)
def _is_access_logger(name: str) -> bool:
    """Return whether records of logger ``name`` are access lines."""
    return name == "access" or name.endswith(".access")


def _install_filters(handler: logging.Handler, sampling: SamplingFilter) -> None:
    """Put the context, sampling and scrub filters on ``handler``, replacing earlier ones."""
    for existing in list(handler.filters):
        if isinstance(existing, ContextFilter | SamplingFilter | ScrubFilter):
            handler.removeFilter(existing)
    handler.addFilter(ContextFilter())
    handler.addFilter(sampling)
    handler.addFilter(ScrubFilter())


def configure_logging(
    service: str,
    level: str = "INFO",
    *,
    success_sample_rate: float = 1.0,
    extra_handlers: Sequence[logging.Handler] = (),
    stream: TextIO | None = None,
    quiet: Mapping[str, int] | None = None,
) -> None:
    """Send every log record to stdout as JSON (and to ``extra_handlers``), scrubbed.

    Replaces the root logger's handlers, so calling it again leaves one stdout handler.
    uvicorn's own loggers propagate to the root logger; ``uvicorn.access`` is disabled
    because the app writes its own access log. Run uvicorn with ``log_config=None`` (or
    call this after uvicorn has configured logging) so it does not install its handlers.
    ``quiet`` holds third-party loggers at a level whatever ``level`` says (default: httpx
    and httpcore at WARNING: they log every request, which the client spans record already).
    """
    sampling = SamplingFilter(success_sample_rate)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    stdout = logging.StreamHandler(stream if stream is not None else sys.stdout)
    stdout.setFormatter(JsonFormatter(service))
    for handler in (stdout, *extra_handlers):
        _install_filters(handler, sampling)
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.disabled = False
        logger.setLevel(logging.NOTSET)
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    for name, quiet_level in (QUIET_LOGGERS if quiet is None else quiet).items():
        logging.getLogger(name).setLevel(quiet_level)


class _ListHandler(logging.Handler):
    """Append each formatted line, parsed back into a dict, to a list."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        """Collect into ``lines``."""
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record and keep the parsed line; errors propagate to the test."""
        self.lines.append(json.loads(self.format(record)))


@contextmanager
def capture_json_logs(
    service: str = "test",
    level: int | str = logging.DEBUG,
    success_sample_rate: float = 1.0,
) -> Iterator[list[dict[str, Any]]]:
    """Collect the JSON lines written while the block runs, each parsed into a dict.

    A handler with the same formatter and filters as ``configure_logging``'s sits on the
    root logger for the duration, and the root level is lowered to ``level`` meanwhile.
    """
    lines: list[dict[str, Any]] = []
    handler = _ListHandler(lines)
    handler.setFormatter(JsonFormatter(service))
    _install_filters(handler, SamplingFilter(success_sample_rate))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
