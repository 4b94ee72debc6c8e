"""Error tracking in the relay, against the real Bugsink (PyPI, SQLite, loopback).

An unhandled error on ``POST /webhook``, on a FastAPI route and in the maintenance task each
lands in the ``webhook-relay`` project with the release, the request id and trace id where
there is a request, and no secret anywhere in the stored JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from lookout_telemetry.errortracking import ERROR_LOGGER, release_name
from lookout_telemetry.logs import capture_json_logs
from lookout_telemetry.testing import MemoryTransport, error_tracking
from relay_support import AUTH, TOKEN, payload, settings, write_routing
from stack_support.bugsink import Bugsink, bugsink_server
from webhook_relay import __version__
from webhook_relay.app import create_app
from webhook_relay.routing import Routing, load_routing
from webhook_relay.store import Store

PASSWORD = "Hunter2-relay-secret"
ROUTING_KEY = "R0UTINGKEY0123456789abcdef012345"
SECRETS = (PASSWORD, TOKEN, ROUTING_KEY)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
RELEASE = release_name("lookout-webhook-relay", __version__, "feed123")
ROUTING = "targets:\n  hook: {type: webhook, url: 'http://127.0.0.1:9/in'}\nfallback: [hook]\n"


@pytest.fixture(scope="module")
def bugsink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bugsink]:
    """Run the real Bugsink once for this module (skipped locally, failed in CI, if it cannot)."""
    with bugsink_server(tmp_path_factory.mktemp("bugsink")) as server:
        yield server


def _boom(*_args: object, **_kwargs: object) -> Any:
    """Fail with secrets in the message and in a local variable."""
    credentials = {"password": PASSWORD, "routing_key": ROUTING_KEY}
    msg = f"bug: password={PASSWORD} routing_key={ROUTING_KEY} ({len(credentials)})"
    raise RuntimeError(msg)


def _assert_no_secret(event: dict[str, Any]) -> None:
    stored = json.dumps(event)
    leaked = [secret for secret in SECRETS if secret in stored]
    assert not leaked, f"secrets in the stored event: {leaked}"


def _app(tmp_path: Path, **overrides: Any) -> Any:
    path = write_routing(tmp_path, ROUTING)
    return create_app(
        settings(tmp_path, path, workers=0, **overrides), load_routing(path), CollectorRegistry()
    )


@pytest.mark.integration
def test_webhook_bug_is_stored_with_ids_and_no_secret(
    bugsink: Bugsink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug on POST /webhook answers 500 with a request id; Bugsink stores it scrubbed."""
    monkeypatch.setattr(Routing, "routes", _boom)
    tracking = error_tracking(bugsink.dsns["webhook-relay"], release=RELEASE)
    with tracking, TestClient(_app(tmp_path)) as client, capture_json_logs() as lines:
        response = client.post(
            "/webhook",
            json=payload(),
            headers={**AUTH, "traceparent": TRACEPARENT, "X-Request-ID": "relay-req-1"},
        )
    assert response.status_code == 500
    assert response.json()["request_id"] == "relay-req-1"
    event = bugsink.wait_for_event(
        "webhook-relay", lambda e: e.get("tags", {}).get("request_id") == "relay-req-1"
    )
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["release"] == RELEASE
    assert event["tags"]["trace_id"] == TRACE_ID
    assert event["request"]["headers"]["authorization"] == "[REDACTED]"
    _assert_no_secret(event)
    (line,) = [ln for ln in lines if ln["message"] == "unhandled error while serving a request"]
    assert line["sentry_event_id"].replace("-", "") == event["event_id"].replace("-", "")
    assert line["trace_id"] == TRACE_ID
    assert not any(secret in json.dumps(line) for secret in SECRETS)


@pytest.mark.integration
def test_maintenance_task_error_is_stored(
    bugsink: Bugsink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in the background maintenance task lands in Bugsink, scrubbed, tagged."""
    monkeypatch.setattr(Store, "queue_stats", _boom)
    tracking = error_tracking(bugsink.dsns["webhook-relay"], release=RELEASE)
    with tracking, TestClient(_app(tmp_path, maintenance_interval_seconds=0.05)):
        event = bugsink.wait_for_event(
            "webhook-relay", lambda e: e.get("tags", {}).get("task") == "maintenance"
        )
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["release"] == RELEASE
    _assert_no_secret(event)


def test_route_bug_answers_500_with_a_request_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug on a FastAPI route is logged with its stack and event id, and answers 500."""
    monkeypatch.setattr(Store, "dead_letters", _boom)
    transport = MemoryTransport()
    with error_tracking(transport=transport, service="webhook-relay", release=RELEASE):
        app = _app(tmp_path)
        with TestClient(app, raise_server_exceptions=False) as client, capture_json_logs() as lines:
            response = client.get("/api/v1/dead-letters", headers=AUTH)
    assert response.status_code == 500
    request_id = response.json()["request_id"]
    (event,) = transport.events
    assert event["tags"]["request_id"] == request_id
    (line,) = [ln for ln in lines if ln["logger"] in {"webhook_relay.app", ERROR_LOGGER}]
    assert "Traceback" in line["exception"]["stack"]
    assert line["sentry_event_id"].replace("-", "") == event["event_id"]
    _assert_no_secret(event)


def test_no_dsn_adds_nothing_to_a_webhook(tmp_path: Path) -> None:
    """Without SENTRY_DSN a webhook is accepted as before and nothing is reported or logged."""
    with TestClient(_app(tmp_path)) as client, capture_json_logs() as lines:
        response = client.post("/webhook", json=payload(), headers=AUTH)
    assert response.status_code == 202
    assert not [ln for ln in lines if "sentry_event_id" in ln]
