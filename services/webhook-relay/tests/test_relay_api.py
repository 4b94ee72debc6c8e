"""The webhook endpoint's HTTP semantics: 202 after commit, 400, 401, 413, 503, duplicates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from relay_support import AUTH, payload, receiver, settings, write_routing
from webhook_relay.app import create_app
from webhook_relay.routing import load_routing
from webhook_relay.store import Store

ROUTING = """
targets:
  hook: {type: webhook, url: "http://127.0.0.1:9/unused"}
rules:
  - name: all
    targets: [hook]
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """Return a client of a relay with workers off (deliveries stay queued)."""
    path = write_routing(tmp_path, ROUTING)
    config = settings(tmp_path, path, workers=0, max_body_bytes=20_000)
    app = create_app(config, load_routing(path), CollectorRegistry())
    with TestClient(app) as test_client:
        yield test_client


def _store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'relay.db'}")


def test_accepts_valid_payload_with_202_and_stores_it(client: TestClient, tmp_path: Path) -> None:
    """A valid payload is answered 202 and its delivery is pending in the store."""
    response = client.post("/webhook", json=payload(), headers=AUTH)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    assert response.json()["deliveries"] == ["hook"]
    assert _store(tmp_path).delivery_counts() == {"pending": 1}


def test_unknown_keys_are_accepted(client: TestClient) -> None:
    """Newer Alertmanager fields (notification_reason, routeLabels) do not cause a 400."""
    body = payload(notification_reason="repeat", routeLabels={"team": "ops"})
    body["alerts"][0]["somethingNew"] = 1
    assert client.post("/webhook", json=body, headers=AUTH).status_code == 202


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (json.dumps({**payload(), "version": "3"}).encode(), "version"),
        (json.dumps({**payload(), "alerts": []}).encode(), "alerts"),
        (json.dumps({k: v for k, v in payload().items() if k != "groupKey"}).encode(), "groupKey"),
        (json.dumps(payload(alerts=[{"status": "odd"}])).encode(), "alerts[0].status"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"receiver": "\\ud800"}', "surrogate"),
    ],
    ids=[
        "bad-json",
        "array",
        "version",
        "no-alerts",
        "no-groupkey",
        "bad-alert",
        "not-utf8",
        "surrogate",
    ],
)
def test_malformed_payload_is_400_with_a_message(
    client: TestClient, tmp_path: Path, body: bytes, fragment: str
) -> None:
    """A malformed payload is answered 400 naming what is wrong, and nothing is stored."""
    response = client.post("/webhook", content=body, headers=AUTH)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert _store(tmp_path).delivery_counts() == {}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["none", "wrong-token", "wrong-scheme"],
)
def test_bad_auth_is_401(client: TestClient, headers: dict[str, str]) -> None:
    """A request without the right bearer token is answered 401."""
    response = client.post("/webhook", json=payload(), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_oversize_body_is_413(client: TestClient, tmp_path: Path) -> None:
    """A body over RELAY_MAX_BODY_BYTES is answered 413 and not stored."""
    body = payload(alerts=[{**payload()["alerts"][0], "fingerprint": f"f{i}"} for i in range(100)])
    response = client.post("/webhook", json=body, headers=AUTH)
    assert response.status_code == 413
    assert "RELAY_MAX_BODY_BYTES" in response.json()["error"]
    assert _store(tmp_path).delivery_counts() == {}


def test_duplicate_within_window_is_acknowledged_not_stored_again(
    client: TestClient, tmp_path: Path
) -> None:
    """The same notification twice (HA peers) is 202 both times and queued once."""
    first = client.post("/webhook", json=payload(), headers=AUTH)
    second = client.post("/webhook", json=payload(), headers=AUTH)
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json()["status"] == "duplicate"
    assert _store(tmp_path).delivery_counts() == {"pending": 1}


def test_resolved_or_changed_group_is_not_a_duplicate(client: TestClient, tmp_path: Path) -> None:
    """A resolve of the same group, or a new alert in it, is a new notification."""
    client.post("/webhook", json=payload(), headers=AUTH)
    assert (
        client.post("/webhook", json=payload(status="resolved"), headers=AUTH).json()["status"]
        == "accepted"
    )
    from relay_support import alert

    grown = payload(alerts=[alert(fingerprint="f1"), alert(fingerprint="f2")])
    assert client.post("/webhook", json=grown, headers=AUTH).json()["status"] == "accepted"
    assert _store(tmp_path).delivery_counts() == {"pending": 3}


def test_store_failure_is_503_with_retry_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the store cannot commit, the answer is 503 with Retry-After (Alertmanager retries)."""
    from webhook_relay.errors import StoreUnavailableError

    committer = client.app.state.relay.committer  # type: ignore[attr-defined]

    def broken(_items: object) -> None:
        raise StoreUnavailableError("database is locked")

    monkeypatch.setattr(committer, "apply", broken)
    response = client.post("/webhook", json=payload(), headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_health_and_metrics(client: TestClient) -> None:
    """Liveness, readiness and OpenMetrics exposition answer."""
    client.post("/webhook", json=payload(), headers=AUTH)
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    text = client.get("/metrics", headers={"Accept": "application/openmetrics-text"}).text
    assert 'relay_notifications_received_total{outcome="accepted"} 1.0' in text
    assert "relay_accept_duration_seconds_bucket" in text


def test_no_route_is_accepted_without_deliveries(tmp_path: Path) -> None:
    """A notification no rule matches is still acknowledged (202) with no deliveries."""
    path = write_routing(
        tmp_path,
        "targets:\n  hook: {type: webhook, url: 'http://127.0.0.1:9/x'}\n"
        "rules:\n  - name: other\n    match: {receiver: other}\n    targets: [hook]\n",
    )
    app = create_app(settings(tmp_path, path, workers=0), load_routing(path), CollectorRegistry())
    with TestClient(app) as test_client:
        response = test_client.post("/webhook", json=payload(), headers=AUTH)
    assert response.status_code == 202
    assert response.json()["deliveries"] == []


def test_accepted_notification_is_delivered(tmp_path: Path) -> None:
    """With workers on, an accepted notification reaches its target."""
    with receiver() as target:
        path = write_routing(
            tmp_path,
            f"targets:\n  hook: {{type: webhook, url: '{target.url}/in'}}\nfallback: [hook]\n",
        )
        app = create_app(settings(tmp_path, path), load_routing(path), CollectorRegistry())
        with TestClient(app) as test_client:
            assert test_client.post("/webhook", json=payload(), headers=AUTH).status_code == 202
            got = target.wait_for(1)
    assert got[0].json()["groupKey"] == payload()["groupKey"]
