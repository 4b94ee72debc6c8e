"""Tests of the JSON logs: line format, trace and request context, scrubbing, sampling."""

from __future__ import annotations

import io
import json
import logging
import re
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from lookout_telemetry.context import request_id_var, user_id_var
from lookout_telemetry.logs import (
    ContextFilter,
    JsonFormatter,
    SamplingFilter,
    ScrubFilter,
    capture_json_logs,
    configure_logging,
)
from lookout_telemetry.scrub import REDACTED

SECRET = "hunter2-s3cr3t"
LOGGER = "lookout_telemetry.tests"
#: An access logger, as a service names it (``<package>.access``).
ACCESS_LOGGER = "shop.access"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root and uvicorn loggers back as they were after each test."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {
        name: (list(lg.handlers), lg.propagate, lg.disabled, lg.level)
        for name in UVICORN_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    yield
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, (handlers, propagate, disabled, level) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.propagate, lg.disabled = propagate, disabled
        lg.setLevel(level)


class RecordingHandler(logging.Handler):
    """Keep every record that gets past the handler's filters."""

    def __init__(self) -> None:
        """Start with no records."""
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record."""
        self.records.append(record)


def make_record(
    name: str = LOGGER,
    level: int = logging.INFO,
    msg: str = "event",
    extra: dict[str, Any] | None = None,
) -> logging.LogRecord:
    """Build a record the way a logger would, with ``extra`` attributes."""
    return logging.getLogger(name).makeRecord(name, level, __file__, 1, msg, (), None, extra=extra)


def access_record(level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    """Build an access-log record with the given extras."""
    return make_record(ACCESS_LOGGER, level, "request", extra)


def test_line_has_the_documented_fields() -> None:
    """A line carries timestamp, level, logger, message, service and the extras."""
    with capture_json_logs(service="shop") as lines:
        logging.getLogger(LOGGER).info("hello %s", "world", extra={"order_id": 7, "ok": True})
    assert len(lines) == 1
    line = lines[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    assert {key: line[key] for key in ("level", "logger", "message", "service")} == {
        "level": "info",
        "logger": LOGGER,
        "message": "hello world",
        "service": "shop",
    }
    assert line["order_id"] == 7
    assert line["ok"] is True
    for absent in ("trace_id", "span_id", "request_id", "user_id", "exception", "args", "msg"):
        assert absent not in line


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (0.5, "1970-01-01T00:00:00.500Z"),
        (1700000000.007, "2023-11-14T22:13:20.007Z"),
        (1700000000.0, "2023-11-14T22:13:20.000Z"),
    ],
    ids=["epoch-half-second", "milliseconds-padded", "whole-second"],
)
def test_timestamp_is_rfc3339_utc_with_milliseconds(created: float, expected: str) -> None:
    """The timestamp is UTC with three fractional digits and a Z."""
    record = logging.LogRecord(LOGGER, logging.INFO, __file__, 1, "x", None, None)
    record.created, record.msecs = created, round((created - int(created)) * 1000, 3)
    assert json.loads(JsonFormatter("shop").format(record))["timestamp"] == expected


@pytest.mark.parametrize(
    ("level", "expected"),
    [(logging.DEBUG, "debug"), (logging.WARNING, "warning"), (logging.CRITICAL, "critical")],
    ids=["debug", "warning", "critical"],
)
def test_level_is_lowercase(level: int, expected: str) -> None:
    """The level name is written in lowercase."""
    with capture_json_logs() as lines:
        logging.getLogger(LOGGER).log(level, "x")
    assert lines[0]["level"] == expected


def test_trace_and_span_ids_come_from_the_active_span() -> None:
    """Inside a span the line carries that span's trace id and span id in lowercase hex."""
    tracer = TracerProvider().get_tracer("test")
    with capture_json_logs() as lines, tracer.start_as_current_span("work") as span:
        logging.getLogger(LOGGER).info("in span")
    context = span.get_span_context()
    assert lines[0]["trace_id"] == format(context.trace_id, "032x")
    assert lines[0]["span_id"] == format(context.span_id, "016x")
    assert re.fullmatch(r"[0-9a-f]{32}", lines[0]["trace_id"])


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (
            {"otelTraceID": "4bf92f3577b34da6a3ce929d0e0e4736", "otelSpanID": "00f067aa0ba902b7"},
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        ),
        (
            {"otelTraceID": "00000000000000000000000000000abc", "otelSpanID": "0000000000000def"},
            ("00000000000000000000000000000abc", "0000000000000def"),
        ),
        ({"otelTraceID": "0", "otelSpanID": "0"}, None),
        ({}, None),
    ],
    ids=["stamped-ids", "leading-zeros-kept", "zero-ids", "no-ids"],
)
def test_trace_ids_fall_back_to_record_attributes(
    attributes: dict[str, str], expected: tuple[str, str] | None
) -> None:
    """Outside a span, ids stamped by the logging instrumentation are used unless they are 0."""
    record = make_record(extra=attributes)
    line = json.loads(JsonFormatter("shop").format(record))
    assert (line.get("trace_id"), line.get("span_id")) == (expected or (None, None))
    assert "otelTraceID" not in line
    assert "otelSpanID" not in line


def test_request_and_user_ids_come_from_the_context() -> None:
    """The request id and user id of the request being served are on its lines."""
    request_token, user_token = request_id_var.set("req-123"), user_id_var.set("user-9")
    try:
        with capture_json_logs() as lines:
            logging.getLogger(LOGGER).info("served")
    finally:
        request_id_var.reset(request_token)
        user_id_var.reset(user_token)
    assert lines[0]["request_id"] == "req-123"
    assert lines[0]["user_id"] == "user-9"


def test_formatter_reads_the_context_by_itself() -> None:
    """JsonFormatter alone, without ContextFilter, writes the ids of the current request."""
    record = make_record()
    request_token, user_token = request_id_var.set("req-7"), user_id_var.set("user-3")
    try:
        line = json.loads(JsonFormatter("shop").format(record))
    finally:
        request_id_var.reset(request_token)
        user_id_var.reset(user_token)
    assert (line["request_id"], line["user_id"]) == ("req-7", "user-3")


def test_formatter_scrubs_by_itself() -> None:
    """JsonFormatter alone, without ScrubFilter, writes no secret."""
    record = make_record(
        msg="login password=%s",
        extra={"token": SECRET, "form": {"card": "4111 1111 1111 1111"}, "url": f"/x?pwd={SECRET}"},
    )
    record.args = (SECRET,)
    written = JsonFormatter("shop").format(record)
    assert SECRET not in written
    assert "4111" not in written
    assert json.loads(written)["token"] == REDACTED


class _Config:
    """An object whose text holds a secret (a settings object, a URL type)."""

    def __str__(self) -> str:
        """Show the secret, as a careless ``__str__`` would."""
        return f"Config(password={SECRET})"


def test_objects_in_extras_are_scrubbed_as_their_text() -> None:
    """An extra that is neither a string nor a container is written scrubbed, not raw."""
    with capture_json_logs() as lines:
        logging.getLogger("lookout.test").info(
            "configured", extra={"config": _Config(), "body": f"pwd={SECRET}".encode()}
        )
    (line,) = lines
    assert SECRET not in json.dumps(line)
    assert line["config"].startswith(f"Config(password={REDACTED}")


def test_context_filter_stamps_ids_for_other_handlers() -> None:
    """ContextFilter copies the request and user ids onto the record for the OTLP handler."""
    record = make_record()
    token = request_id_var.set("req-5")
    try:
        ContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    assert record.request_id == "req-5"
    assert not hasattr(record, "user_id")


def _fail(message: str) -> None:
    """Raise a ValueError carrying ``message``."""
    raise ValueError(message)


def test_exception_has_type_message_and_stack() -> None:
    """A logged exception is written with its type, message and formatted traceback."""
    with capture_json_logs() as lines:
        try:
            _fail("out of stock")
        except ValueError:
            logging.getLogger(LOGGER).exception("checkout failed")
    exception = lines[0]["exception"]
    assert exception["type"] == "ValueError"
    assert exception["message"] == "out of stock"
    assert exception["stack"].startswith("Traceback (most recent call last):")
    assert "in _fail" in exception["stack"]
    assert exception["stack"].rstrip().endswith("ValueError: out of stock")


def _log_password_in_args(log: logging.Logger) -> None:
    """Log a password passed as a %-argument."""
    log.info("login user=%s password=%s", "bob", SECRET)


def _log_password_in_sensitive_extra(log: logging.Logger) -> None:
    """Log a password as an extra named password."""
    log.info("login", extra={"password": SECRET})


def _log_password_in_nested_extra(log: logging.Logger) -> None:
    """Log a password nested in a dict extra."""
    log.info("login", extra={"form": {"user": "bob", "new_password": SECRET}})


def _log_password_in_extra_text(log: logging.Logger) -> None:
    """Log a password inside a form body extra."""
    log.info("login", extra={"body": f"user=bob&password={SECRET}"})


def _log_bearer_in_message(log: logging.Logger) -> None:
    """Log a bearer token inside the message."""
    log.warning("upstream sent Authorization: Bearer %s", SECRET)


def _log_password_in_exception(log: logging.Logger) -> None:
    """Log an exception whose chain carries secrets in its messages."""
    try:
        try:
            _fail(f"could not connect to postgresql://shop:{SECRET}@db/shop")
        except ValueError as cause:
            raise RuntimeError(f"retry failed with token={SECRET}") from cause
    except RuntimeError:
        log.exception("database down")


LEAKS = [
    (_log_password_in_args, "msg-args"),
    (_log_password_in_sensitive_extra, "sensitive-extra"),
    (_log_password_in_nested_extra, "nested-extra"),
    (_log_password_in_extra_text, "extra-text"),
    (_log_bearer_in_message, "bearer-in-message"),
    (_log_password_in_exception, "exception-chain"),
]


@pytest.mark.parametrize("emit", [c[0] for c in LEAKS], ids=[c[1] for c in LEAKS])
def test_secret_reaches_no_handler(emit: Any) -> None:
    """A secret is absent from the stdout line, from a second handler's record and from OTLP."""
    stream, recorder = io.StringIO(), RecordingHandler()
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    configure_logging(
        "shop",
        stream=stream,
        extra_handlers=[recorder, LoggingHandler(logger_provider=provider)],
    )
    emit(logging.getLogger(LOGGER))

    written = stream.getvalue()
    assert written.count("\n") == 1
    assert SECRET not in written
    assert REDACTED in written
    json.loads(written)

    (record,) = recorder.records
    assert SECRET not in record.getMessage()
    assert SECRET not in repr(vars(record))
    if record.exc_info is not None:
        assert SECRET not in "".join(traceback.format_exception(*record.exc_info))

    (exported,) = exporter.get_finished_logs()
    log_record = exported.log_record
    assert SECRET not in str(log_record.body)
    assert SECRET not in repr(dict(log_record.attributes or {}))


def test_exception_keeps_its_type_name_and_frames_when_scrubbed() -> None:
    """After scrubbing, the traceback still names the original type, frames and cause."""
    recorder = RecordingHandler()
    configure_logging("shop", stream=io.StringIO(), extra_handlers=[recorder])
    _log_password_in_exception(logging.getLogger(LOGGER))
    exc_info = recorder.records[0].exc_info
    assert exc_info is not None
    text = "".join(traceback.format_exception(*exc_info))
    assert f"RuntimeError: retry failed with token={REDACTED}" in text
    assert f"ValueError: could not connect to postgresql://shop:{REDACTED}@db/shop" in text
    assert "direct cause" in text
    assert "in _fail" in text


def test_scrub_filter_is_idempotent() -> None:
    """Scrubbing a record a second time changes nothing."""
    record = make_record(
        msg="login %s password=%s",
        extra={"token": SECRET, "body": {"card": "4111111111111111"}, "note": "Bearer x"},
    )
    record.args = ("bob", SECRET)
    scrub_filter = ScrubFilter()
    assert scrub_filter.filter(record)
    once = dict(vars(record))
    assert scrub_filter.filter(record)
    assert vars(record) == once
    assert record.getMessage() == f"login bob password={REDACTED}"
    assert record.args is None
    assert record.token == REDACTED


SAMPLING_CASES = [
    (1.0, access_record(path="/health/live", status=200), False, "health-live-dropped"),
    (1.0, access_record(path="/health/ready", status=503), False, "health-failing-dropped"),
    (1.0, access_record(path="/metrics", status=200), False, "metrics-dropped"),
    (0.0, access_record(path="/api/orders", status=500), True, "5xx-kept-at-rate-0"),
    (0.0, access_record(path="/api/orders", status=404), True, "4xx-kept-at-rate-0"),
    (0.0, access_record(path="/api/login", status=200, security=True), True, "security-kept"),
    (0.0, access_record(logging.WARNING, path="/api/x", status=200), True, "warning-kept"),
    (0.0, access_record(path="/api/orders"), True, "no-status-kept"),
    (0.0, access_record(path="/api/orders", status=200), False, "2xx-dropped-at-rate-0"),
    (0.0, access_record(path="/api/orders", status=302), False, "3xx-dropped-at-rate-0"),
    (1.0, access_record(path="/api/orders", status=200), True, "2xx-kept-at-rate-1"),
    (0.0, make_record(extra={"path": "/health", "status": 200}), True, "other-logger-kept"),
    (0.0, make_record(extra={"status": 200}), True, "other-logger-2xx-kept"),
]


@pytest.mark.parametrize(
    ("rate", "record", "kept"),
    [c[:3] for c in SAMPLING_CASES],
    ids=[c[3] for c in SAMPLING_CASES],
)
def test_sampling_rules(rate: float, record: logging.LogRecord, kept: bool) -> None:
    """Probe lines are dropped, errors and security events kept, successes sampled."""
    assert SamplingFilter(rate).filter(record) is kept


def test_same_trace_id_gets_the_same_decision() -> None:
    """Records of one trace share a decision, and it matches TraceIdRatioBased's."""
    rate = 0.5
    sampler, sampling = TraceIdRatioBased(rate), SamplingFilter(rate)
    decisions = []
    for n in range(200):
        trace_id = (n * 0x9E3779B97F4A7C15 + 12345) % (1 << 128)
        trace_hex = format(trace_id, "032x")

        def record(trace_hex: str = trace_hex) -> logging.LogRecord:
            ids = {"otelTraceID": trace_hex, "otelSpanID": "00f067aa0ba902b7"}
            return access_record(path="/api/products", status=200, **ids)

        first, second = sampling.filter(record()), sampling.filter(record())
        assert first == second
        assert first == sampler.should_sample(None, trace_id, "GET").decision.is_sampled()
        decisions.append(first)
    assert 60 < sum(decisions) < 140


def test_untraced_records_are_sampled_at_the_rate_consistently() -> None:
    """Without a trace id about ``rate`` of records are kept, each the same way every time."""
    sampling = SamplingFilter(0.25)
    records = [access_record(path="/api/products", status=200) for _ in range(4000)]
    decisions = [sampling.filter(record) for record in records]
    assert decisions == [sampling.filter(record) for record in records]
    assert 0.2 < sum(decisions) / len(decisions) < 0.3


@pytest.mark.parametrize("rate", [-0.1, 1.5], ids=["negative", "above-one"])
def test_sampling_rate_out_of_range_is_refused(rate: float) -> None:
    """A rate outside 0.0 to 1.0 raises ValueError."""
    with pytest.raises(ValueError, match=r"between 0\.0 and 1\.0"):
        SamplingFilter(rate)


def test_health_access_line_is_never_written() -> None:
    """An access line for a health probe does not reach the JSON output."""
    with capture_json_logs() as lines:
        access = logging.getLogger(ACCESS_LOGGER)
        access.info("request", extra={"path": "/health/live", "status": 200})
        access.info("request", extra={"path": "/api/cart", "status": 201, "method": "POST"})
    assert [line["path"] for line in lines] == ["/api/cart"]
    assert lines[0]["status"] == 201
    assert lines[0]["method"] == "POST"


def test_capture_json_logs_restores_the_root_logger() -> None:
    """After the block, the capturing handler is gone and the root level is back."""
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    handlers = list(root.handlers)
    with capture_json_logs(level=logging.DEBUG):
        assert root.level == logging.DEBUG
    assert root.level == logging.WARNING
    assert root.handlers == handlers


def test_configure_logging_is_idempotent() -> None:
    """Configuring twice leaves one stdout handler and writes each event once."""
    stream = io.StringIO()
    configure_logging("shop", stream=stream)
    configure_logging("shop", level="debug", stream=stream)
    root = logging.getLogger()
    assert len(root.handlers) == 1
    assert root.level == logging.DEBUG
    logging.getLogger(LOGGER).debug("once")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["once"]


def test_every_installed_handler_gets_the_filters() -> None:
    """The stdout handler and each extra handler carry scrubbing and sampling, once each."""
    extra = RecordingHandler()
    configure_logging("shop", stream=io.StringIO(), extra_handlers=[extra])
    configure_logging("shop", stream=io.StringIO(), extra_handlers=[extra])
    root = logging.getLogger()
    assert extra in root.handlers
    for handler in root.handlers:
        kinds = [type(f) for f in handler.filters]
        assert kinds == [ContextFilter, SamplingFilter, ScrubFilter]
    assert extra.formatter is None


def test_sample_rate_applies_to_every_handler() -> None:
    """With rate 0 a successful access line reaches neither stdout nor the extra handler."""
    stream, extra = io.StringIO(), RecordingHandler()
    configure_logging("shop", success_sample_rate=0.0, stream=stream, extra_handlers=[extra])
    logging.getLogger(ACCESS_LOGGER).info("request", extra={"path": "/api/x", "status": 200})
    logging.getLogger(ACCESS_LOGGER).info("request", extra={"path": "/api/x", "status": 502})
    assert [json.loads(line)["status"] for line in stream.getvalue().splitlines()] == [502]
    assert [record.status for record in extra.records] == [502]


def test_uvicorn_loggers_go_through_the_root_logger() -> None:
    """uvicorn's own lines propagate to the JSON handler and uvicorn.access is disabled."""
    logging.getLogger("uvicorn.error").addHandler(logging.NullHandler())
    logging.getLogger("uvicorn.access").propagate = True
    stream = io.StringIO()
    configure_logging("shop", stream=stream)
    for name in ("uvicorn", "uvicorn.error"):
        assert logging.getLogger(name).propagate
        assert logging.getLogger(name).handlers == []
    access = logging.getLogger("uvicorn.access")
    assert access.disabled
    assert not access.propagate
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    access.info('127.0.0.1 - "GET / HTTP/1.1" 200')
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("uvicorn.error", "Application startup complete.")
    ]
