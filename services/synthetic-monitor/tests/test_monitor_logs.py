"""Logs: JSON on stdout and OTLP records, both redacted, both with the run's trace id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from lookout_telemetry.logs import configure_logging
from monitor_support import target, write
from synthetic_monitor.config import load_config
from synthetic_monitor.otel import exporter_choice
from synthetic_monitor.runner import JourneyRunner

SECRET = "hunter2-is-secret"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger back as it was after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_stdout_and_otlp_logs_carry_trace_ids_and_no_secret(
    tmp_path: Path, restore_logging: None
) -> None:
    """A failing login that echoes the password: both outputs redact it and keep the ids."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    stdout = io.StringIO()
    configure_logging(
        "synthetic-monitor",
        "INFO",
        stream=stdout,
        extra_handlers=[LoggingHandler(logger_provider=provider)],
    )
    with target() as server:
        text = f"""
journeys:
  - name: login
    secrets: {{password: {{env: PW}}}}
    steps:
      - name: login
        method: POST
        url: "{server.url}/login"
        json: {{password: "{{{{ secrets.password }}}}"}}
        conditions: ["[STATUS] == 200", "[BODY] == ok"]
"""
        journey = load_config(write(tmp_path / "l.yml", text), {}).journeys["login"]
        result = asyncio.run(JourneyRunner(environ={"PW": SECRET}).run(journey))
    lines = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["step finished", "journey finished"]
    assert all(line["trace_id"] == result.trace_id for line in lines)
    assert SECRET not in stdout.getvalue()
    assert "[REDACTED]" in stdout.getvalue()
    records = [item.log_record for item in exporter.get_finished_logs()]
    assert len(records) == 2
    for record in records:
        assert format(record.trace_id, "032x") == result.trace_id
        assert SECRET not in str(record.body) + json.dumps(
            dict(record.attributes or {}), default=str
        )
        assert (
            "status_code" not in (record.attributes or {})
            or record.attributes["status_code"] == 401
        )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://loki:3100/otlp/v1/logs"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}, "none"),
        ({"OTEL_LOGS_EXPORTER": "console"}, "console"),
    ],
    ids=["nothing", "endpoint", "logs-endpoint", "sdk-disabled", "console"],
)
def test_logs_are_exported_only_when_configured(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    """OTLP log export follows the standard OTEL_* variables; nothing is set, nothing is sent."""
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_LOGS_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert exporter_choice("logs") == expected


def test_an_unknown_exporter_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_TRACES_EXPORTER=zipkin is refused with the variable's name."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        exporter_choice("traces")
