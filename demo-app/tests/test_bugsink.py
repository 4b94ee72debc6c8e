"""Error tracking against the real Bugsink (PyPI, SQLite, loopback): what it stores, and no secret.

The ``bugsink`` session fixture starts Bugsink once (skipped locally, failed in CI, when it
cannot start); each test points sentry-sdk at the shop's project DSN, makes the shop fail,
and reads the event Bugsink stored back out of its database.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from demo_support import ShopFactory, Spans, error_tracking
from lookout_demo import __version__
from lookout_telemetry.errortracking import release_name
from stack_support.bugsink import Bugsink

pytestmark = pytest.mark.integration

PASSWORD = "Hunter2-very-secret"
CARD = "4111 1111 1111 1111"
BEARER = "sk-live-8f3kq0aZ9yYtoken"
QUERY_TOKEN = "qs-secret-77Aq9"
SECRETS = (PASSWORD, CARD, CARD.replace(" ", ""), BEARER, QUERY_TOKEN)
FAULT_HEADERS = {"X-Fault-Token": "test-fault-token"}
REVISION = "0123abc"


def _exception(event: dict[str, Any]) -> dict[str, Any]:
    values = event.get("exception", {}).get("values", [])
    return values[-1] if values else {}


def _assert_no_secret(event: dict[str, Any]) -> None:
    stored = json.dumps(event)
    leaked = [secret for secret in SECRETS if secret in stored]
    assert not leaked, f"secrets in the stored event: {leaked}"


def test_unhandled_request_error_is_stored_scrubbed(
    bugsink: Bugsink, make_shop: ShopFactory, spans: Spans
) -> None:
    """An unhandled error in a request with a password and a card lands in Bugsink, scrubbed."""
    with error_tracking(bugsink.dsns["shop"], revision=REVISION):
        shop = make_shop()
        rule = {"rules": [{"route": "/api/login", "exception_rate": 1.0}]}
        assert shop.put("/admin/faults", json=rule, headers=FAULT_HEADERS).status_code == 200
        response = shop.post(
            f"/api/login?token={QUERY_TOKEN}",
            json={"email": "alice@example.com", "password": PASSWORD, "card_number": CARD},
            headers={"Authorization": f"Bearer {BEARER}", "X-Request-ID": "req-bugsink-1"},
        )
        assert response.status_code == 500
    event = bugsink.wait_for_event(
        "shop", lambda e: e.get("tags", {}).get("request_id") == "req-bugsink-1"
    )
    exception = _exception(event)
    assert exception["type"] == "InjectedCrashError"
    functions = [frame.get("function") for frame in exception["stacktrace"]["frames"]]
    assert "inject_faults" in functions
    assert event["release"] == release_name("lookout-demo", __version__, REVISION)
    assert event["environment"] == "test"
    trace_id = event["tags"]["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    assert trace_id in {format(s.context.trace_id, "032x") for s in spans.finished()}
    assert event["request"]["headers"]["authorization"] == "[REDACTED]"
    _assert_no_secret(event)


def test_background_task_error_is_stored_with_its_request(
    bugsink: Bugsink, make_shop: ShopFactory
) -> None:
    """A background task's error lands in Bugsink with the spawning request's id, scrubbed."""
    with error_tracking(bugsink.dsns["shop"], revision=REVISION):
        shop = make_shop()
        response = shop.post(
            f"/admin/faults/background-error?token={QUERY_TOKEN}",
            headers={**FAULT_HEADERS, "X-Request-ID": "req-bugsink-2"},
        )
        assert response.status_code == 202
        app_tasks = shop.app.state.tasks  # type: ignore[attr-defined]
        for _ in range(100):
            if app_tasks.failures:
                break
            shop.portal.call(lambda: None)  # type: ignore[union-attr]
    event = bugsink.wait_for_event(
        "shop", lambda e: e.get("tags", {}).get("request_id") == "req-bugsink-2"
    )
    assert _exception(event)["type"] == "InjectedCrashError"
    assert event["tags"]["task"] == "injected-fault"
    assert re.fullmatch(r"[0-9a-f]{32}", event["tags"]["trace_id"])
    assert event["release"] == release_name("lookout-demo", __version__, REVISION)
    _assert_no_secret(event)
