"""Error tracking with sentry-sdk (to Bugsink or any Sentry-compatible tracker), and the hooks
that catch every error escaping the code that should have handled it.

On only when ``SENTRY_DSN`` is set; without it nothing is sent and nothing is logged about it.
Every event is stamped with the release (``<package>@<version>+<revision>``, see
``release_name``), the environment, the request id, the OpenTelemetry trace and span ids (so
an event links to its trace in Tempo) and the logged-in user's id, then scrubbed by
``lookout_telemetry.scrub`` (the scrubber the logs use) in ``before_send``,
``before_send_transaction`` and ``before_breadcrumb``: no password, token, Authorization
header or card number leaves the process, wherever in the event it sits (exception messages,
local variables, request data).

Escape paths, each logged as JSON with the stack and reported (``report_exception``):

* a request's unhandled error: the service's middleware or error handler calls
  ``report_exception`` or ``log_and_report`` (the demo's ``web.middleware``, the relay's
  ``ingest``, the monitor's runner);
* ``sys.excepthook``: the main thread is dying; the report is flushed before it exits;
* ``threading.excepthook``: a thread died, the process goes on;
* the asyncio loop's exception handler: an error no task awaited (``loop_exception_handler``);
* background tasks: ``lookout_telemetry.tasks`` (``TaskSupervisor``, ``report_task_failure``)
  reports a task that failed.

Each log line of a reported error carries ``sentry_event_id``: Grafana links it to the event
in Bugsink.

sentry-sdk's own automatic integrations are off: these hooks report each error once, and its
logging integration keeps only WARNING and above as breadcrumbs (no event per log line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol

import sentry_sdk
from opentelemetry import trace
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.utils import BadDsn, Dsn

from lookout_telemetry.context import request_id_var, user_id_var
from lookout_telemetry.scrub import scrub

__all__ = [
    "ERROR_LOGGER",
    "check_dsn",
    "current_context",
    "dashed_event_id",
    "install_loop_handler",
    "install_process_hooks",
    "log_and_report",
    "loop_exception_handler",
    "release_name",
    "remember_context",
    "remembered_context",
    "report_exception",
    "scrub_breadcrumb",
    "scrub_event",
    "setup_error_tracking",
    "start_error_tracking",
]

#: The logger every escaped error is written to (JSON, with its stack).
ERROR_LOGGER = "lookout_telemetry.errors"
log = logging.getLogger(ERROR_LOGGER)

#: How long a dying process waits for its last report to be sent.
FLUSH_TIMEOUT_SECONDS = 2.0

Event = dict[str, Any]


def release_name(package: str, version: str, revision: str) -> str:
    """Return the release an event is filed under: ``<package>@<version>+<revision>``."""
    return f"{package}@{version}+{revision}"


def current_context() -> dict[str, str]:
    """Return the request id, trace id, span id and user id in force here (those that are set)."""
    context: dict[str, str] = {}
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        context["trace_id"] = format(span_context.trace_id, "032x")
        context["span_id"] = format(span_context.span_id, "016x")
    request_id, user_id = request_id_var.get(), user_id_var.get()
    if request_id is not None:
        context["request_id"] = request_id
    if user_id is not None:
        context["user_id"] = user_id
    return context


#: Where ``remember_context`` keeps the ids on an exception.
_CONTEXT_ATTR = "__lookout_context__"


def remember_context(error: BaseException, span: trace.Span | None = None) -> None:
    """Keep the ids in force where ``error`` was raised (or ``span``'s), for a later report.

    A span has ended by the time its error reaches the handler that reports it; call this
    inside the span (or pass it) so the report still names the trace. The first call wins.
    """
    if hasattr(error, _CONTEXT_ATTR):
        return
    context = current_context()
    if span is not None and (span_context := span.get_span_context()).is_valid:
        context["trace_id"] = format(span_context.trace_id, "032x")
        context["span_id"] = format(span_context.span_id, "016x")
    # An exception type with __slots__ keeps nothing: the report takes the ids then in force.
    with contextlib.suppress(AttributeError):
        setattr(error, _CONTEXT_ATTR, context)


def remembered_context(error: BaseException) -> dict[str, str]:
    """Return the ids ``remember_context`` kept on ``error`` (empty if none)."""
    context = getattr(error, _CONTEXT_ATTR, None)
    return dict(context) if isinstance(context, dict) else {}


def _stamp(event: Event, context: Mapping[str, str]) -> None:
    """Put the ids on an event as tags, the trace context and the user (where not set yet)."""
    tags = event.setdefault("tags", {})
    for key in ("request_id", "trace_id", "span_id"):
        if key in context:
            tags.setdefault(key, context[key])
    if "trace_id" in context:
        # Sentry's trace context takes OpenTelemetry's ids, so the event names the trace that
        # Tempo has (sentry-sdk's own propagation context would make up another one).
        trace_context = event.setdefault("contexts", {}).setdefault("trace", {})
        trace_context["trace_id"] = context["trace_id"]
        trace_context["span_id"] = context.get("span_id", trace_context.get("span_id"))
    if "user_id" in context and not event.get("user"):
        event["user"] = {"id": context["user_id"]}


def scrub_event(event: Event, _hint: Mapping[str, Any] | None = None) -> Event:
    """Stamp an event with the ids in force, then return it scrubbed (``before_send``)."""
    _stamp(event, current_context())
    scrubbed = scrub(event)
    return scrubbed if isinstance(scrubbed, dict) else event


def scrub_breadcrumb(crumb: Event, _hint: Mapping[str, Any] | None = None) -> Event:
    """Return a breadcrumb scrubbed (``before_breadcrumb``)."""
    scrubbed = scrub(crumb)
    return scrubbed if isinstance(scrubbed, dict) else crumb


def check_dsn(value: str) -> str | None:
    """Return a SENTRY_DSN setting ready for use: ``None`` when blank (tracking off), else the DSN.

    Every service's settings validate their DSN with this, so a mistyped DSN stops start-up
    with a message saying what is wrong instead of sentry-sdk's traceback at first use. The
    message never repeats the value: a DSN holds the project's key.
    """
    value = value.strip()
    if not value:
        return None
    try:
        Dsn(value)
    except BadDsn as error:
        msg = (
            f"not a Sentry DSN ({error}); expected http(s)://<public key>@<host>/<project id>, "
            "as on the project's page in Bugsink"
        )
        raise ValueError(msg) from None
    return value


def setup_error_tracking(
    dsn: str | None,
    *,
    service: str,
    release: str,
    environment: str,
    transport: Any = None,
) -> bool:
    """Start sentry-sdk when a DSN is given; return whether it is on.

    ``release`` is ``release_name(package, version, revision)``. ``transport`` replaces the
    HTTP transport (tests capture envelopes in memory with it).
    """
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        release=release,
        environment=environment,
        server_name=service,
        # Each escape path reports explicitly, once; the automatic integrations would report
        # some errors twice and patch libraries on every request.
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[
            DedupeIntegration(),
            # WARNING and above become breadcrumbs; no log line becomes an event by itself, and
            # none is sent as a Sentry log (on by default at INFO: it would handle every
            # access line a third time; Loki has the logs).
            LoggingIntegration(level=logging.WARNING, event_level=None, sentry_logs_level=None),
        ],
        # Traces go to Tempo through OpenTelemetry; Sentry's performance tracing stays off.
        traces_sample_rate=None,
        before_send=scrub_event,  # type: ignore[arg-type]
        before_send_transaction=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
        transport=transport,
    )
    sentry_sdk.set_tag("service", service)
    return True


class _Secret(Protocol):
    """A secret setting (pydantic's SecretStr): the DSN is read only where it is used."""

    def get_secret_value(self) -> str: ...


def start_error_tracking(
    dsn: str | _Secret | None,
    *,
    service: str,
    package: str,
    version: str,
    revision: str,
    environment: str,
) -> bool:
    """Start a service's error tracking as every entry point of ours does; return if it is on.

    sentry-sdk with release ``<package>@<version>+<revision>`` when ``dsn`` is given (silent
    without), then the process hooks (``sys.excepthook``, ``threading.excepthook``), which log
    as JSON whether or not a tracker is configured.
    """
    value = dsn.get_secret_value() if dsn is not None and not isinstance(dsn, str) else dsn
    started = setup_error_tracking(
        value,
        service=service,
        release=release_name(package, version, revision),
        environment=environment,
    )
    install_process_hooks()
    return started


def report_exception(
    error: BaseException,
    *,
    context: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    request: Mapping[str, Any] | None = None,
) -> str | None:
    """Send one error to the tracker with the ids in force (or ``context``); return its id.

    The ids are, by precedence: ``context``, those ``remember_context`` kept on the error,
    those in force here.

    ``request`` is Sentry's request interface (method, url, query_string, headers): scrubbed
    like the rest. Returns None when error tracking is off. Never raises: reporting must not
    add an error of its own.
    """
    if not sentry_sdk.is_initialized():
        return None
    ids = dict(current_context())
    ids.update(remembered_context(error))
    ids.update(context or {})
    try:
        with sentry_sdk.new_scope() as scope:
            for key in ("request_id", "trace_id", "span_id"):
                if key in ids:
                    scope.set_tag(key, ids[key])
            for key, value in (tags or {}).items():
                scope.set_tag(key, value)
            if "user_id" in ids:
                scope.set_user({"id": ids["user_id"]})
            if "trace_id" in ids:
                scope.set_context(
                    "otel", {"trace_id": ids["trace_id"], "span_id": ids.get("span_id")}
                )
            if request is not None:
                info = dict(request)
                scope.add_event_processor(lambda event, _hint: {**event, "request": info})
            return sentry_sdk.capture_exception(error)
    except Exception:  # the tracker's failure is logged, never raised into the caller
        log.warning("error report failed", exc_info=True)
        return None


def dashed_event_id(event_id: str) -> str:
    """Return an event id as Bugsink's URLs take it (``/issues/event/<dashed UUID>/``).

    sentry-sdk hands out 32 hex digits; Bugsink's event links want the dashed UUID form, so
    the log lines carry that one and Grafana's link needs no rewriting.
    """
    try:
        return str(uuid.UUID(event_id))
    except ValueError:
        return event_id


def log_and_report(
    message: str,
    error: BaseException,
    *,
    level: int = logging.ERROR,
    tags: Mapping[str, str] | None = None,
    context: Mapping[str, str] | None = None,
    request: Mapping[str, Any] | None = None,
    logger: logging.Logger | None = None,
    **extra: object,
) -> str | None:
    """Report an error, then log it (JSON, with its stack and the event id); return the id.

    ``context`` and ``request`` go to ``report_exception``; ``logger`` (default: the
    ``ERROR_LOGGER``) writes the line, whose ``sentry_event_id`` Grafana links to Bugsink.
    """
    event_id = report_exception(error, context=context, tags=tags, request=request)
    # The ids kept where the error was raised name its trace on the line too (the JSON
    # formatter takes the span in force first, when there is one).
    fields: dict[str, object] = {
        **remembered_context(error),
        "error_type": type(error).__name__,
        **extra,
    }
    if event_id is not None:
        fields["sentry_event_id"] = dashed_event_id(event_id)
    (logger or log).log(
        level, message, exc_info=(type(error), error, error.__traceback__), extra=fields
    )
    return event_id


ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], Any]


def _sys_excepthook(
    exc_type: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    """Log and report an error that ends the main thread, then flush before the process exits."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, error, tb)
        return
    if error.__traceback__ is None:
        error = error.with_traceback(tb)
    log_and_report(
        "uncaught exception: the process exits", error, level=logging.CRITICAL, path="excepthook"
    )
    _flush()


def _threading_excepthook(args: threading.ExceptHookArgs) -> None:
    """Log and report an error that ended a thread (the process goes on)."""
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    error = args.exc_value
    if error.__traceback__ is None:
        error = error.with_traceback(args.exc_traceback)
    log_and_report(
        "uncaught exception in a thread",
        error,
        path="thread",
        thread_name=args.thread.name if args.thread is not None else None,
    )


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Log and report what the asyncio loop could not hand to anyone (its exception handler)."""
    error = context.get("exception")
    message = str(context.get("message") or "asyncio loop error")
    if not isinstance(error, BaseException):
        log.error("asyncio loop error: %s", message, extra={"path": "asyncio"})
        return
    task = context.get("task") or context.get("future")
    log_and_report(
        f"asyncio loop error: {message}",
        error,
        path="asyncio",
        task=task.get_name() if isinstance(task, asyncio.Task) else None,
    )


def _flush() -> None:
    """Send what is queued, waiting at most FLUSH_TIMEOUT_SECONDS."""
    if sentry_sdk.is_initialized():
        sentry_sdk.flush(timeout=FLUSH_TIMEOUT_SECONDS)


def install_process_hooks() -> None:
    """Route ``sys.excepthook`` and ``threading.excepthook`` through log-and-report."""
    sys.excepthook = _sys_excepthook
    threading.excepthook = _threading_excepthook


def install_loop_handler(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Give the running (or given) asyncio loop the log-and-report exception handler."""
    (loop or asyncio.get_running_loop()).set_exception_handler(loop_exception_handler)
