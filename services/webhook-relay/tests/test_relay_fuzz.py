"""Bad input, generated: never a 5xx, never a crash, nothing stored for a rejected request."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from relay_support import AUTH, payload, write_routing
from relay_support import settings as relay_settings
from webhook_relay.app import create_app
from webhook_relay.routing import load_routing
from webhook_relay.store import Store, notifications

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "version",
    "groupKey",
    "status",
    "receiver",
    "alerts",
    "groupLabels",
    "commonLabels",
    "truncatedAlerts",
    "externalURL",
]
ALERT_FIELDS = [
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "fingerprint",
    "generatorURL",
]


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    """Return a valid payload with some fields replaced, dropped or garbled, as bytes."""
    body: dict[str, Any] = payload(group=draw(st.text(min_size=1, max_size=30)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        if draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = draw(json_values)
    if isinstance(body.get("alerts"), list) and body["alerts"]:
        first = body["alerts"][0]
        if isinstance(first, dict):
            for name in draw(st.lists(st.sampled_from(ALERT_FIELDS), max_size=2)):
                first[name] = draw(json_values)
    raw = json.dumps(body).encode()
    cut = draw(st.sampled_from(["none", "truncate", "garble"]))
    if cut == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif cut == "garble":
        position = draw(st.integers(0, len(raw) - 1))
        raw = raw[:position] + draw(st.binary(min_size=1, max_size=4)) + raw[position + 1 :]
    return raw


def _count(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(notifications)).scalar_one())


def test_fuzzed_payloads_never_5xx_and_rejections_store_nothing() -> None:
    """Mutated, truncated and garbled payloads get 202 or 4xx; 4xx stores nothing."""
    with tempfile.TemporaryDirectory() as folder:
        tmp_path = Path(folder)
        path = write_routing(
            tmp_path, "targets:\n  h: {type: webhook, url: 'http://127.0.0.1:9/'}\nfallback: [h]\n"
        )
        app = create_app(
            relay_settings(tmp_path, path, workers=0), load_routing(path), CollectorRegistry()
        )
        store = Store(f"sqlite:///{tmp_path / 'relay.db'}")
        with TestClient(app, raise_server_exceptions=False) as client:

            @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(body=mutated_payloads() | st.binary(max_size=200))
            def check(body: bytes) -> None:
                before = _count(store)
                response = client.post("/webhook", content=body, headers=AUTH)
                assert response.status_code < 500, (response.status_code, response.text, body)
                if response.status_code != 202:
                    assert response.status_code == 400
                    assert response.json()["error"]
                    assert _count(store) == before
                elif response.json()["status"] == "accepted":
                    assert _count(store) == before + 1

            check()
