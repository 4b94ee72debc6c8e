"""Inbound authentication modes: bearer from a file, basic, HMAC-SHA256 with a replay window."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from relay_support import payload, settings, write_routing
from webhook_relay.app import create_app
from webhook_relay.routing import load_routing

ROUTING = "targets:\n  h: {type: webhook, url: 'http://127.0.0.1:9/'}\nfallback: [h]\n"


def client_for(tmp_path: Path, **overrides: object) -> TestClient:
    """Return a client of a relay (workers off) with the given auth settings."""
    path = write_routing(tmp_path, ROUTING)
    values = {"workers": 0, "token": None, **overrides}
    return TestClient(
        create_app(settings(tmp_path, path, **values), load_routing(path), CollectorRegistry())
    )


def test_bearer_token_from_file(tmp_path: Path) -> None:
    """RELAY_TOKEN_FILE's content (stripped) is the token."""
    token_file = tmp_path / "token"
    token_file.write_text("from-file-token\n")
    with client_for(tmp_path, token_file=token_file) as client:
        ok = client.post(
            "/webhook", json=payload(), headers={"Authorization": "Bearer from-file-token"}
        )
        bad = client.post("/webhook", json=payload(), headers={"Authorization": "Bearer other"})
    assert (ok.status_code, bad.status_code) == (202, 401)


def test_basic_auth(tmp_path: Path) -> None:
    """Basic mode checks user and password."""
    with client_for(
        tmp_path, auth_mode="basic", basic_username="am", basic_password="pw"
    ) as client:
        good = base64.b64encode(b"am:pw").decode()
        wrong = base64.b64encode(b"am:nope").decode()
        assert (
            client.post(
                "/webhook", json=payload(), headers={"Authorization": f"Basic {good}"}
            ).status_code
            == 202
        )
        answer = client.post(
            "/webhook", json=payload(), headers={"Authorization": f"Basic {wrong}"}
        )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Basic"


@pytest.mark.parametrize(
    ("skew", "tamper", "expected"),
    [(0, False, 202), (0, True, 401), (-1000, False, 401)],
    ids=["valid", "tampered-body", "outside-window"],
)
def test_hmac_signature_with_replay_window(
    tmp_path: Path, skew: int, tamper: bool, expected: int
) -> None:
    """HMAC mode: a valid signature passes; a changed body or an old timestamp does not."""
    body = json.dumps(payload()).encode()
    timestamp = str(int(time.time()) + skew)
    signature = hmac.new(b"shh", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    sent = body.replace(b"firing", b"resolved") if tamper else body
    with client_for(
        tmp_path, auth_mode="hmac", hmac_secret="shh", hmac_window_seconds=300
    ) as client:
        response = client.post(
            "/webhook",
            content=sent,
            headers={"X-Relay-Timestamp": timestamp, "X-Relay-Signature": f"sha256={signature}"},
        )
    assert response.status_code == expected, response.text


def test_auth_mode_none_accepts_without_credentials(tmp_path: Path) -> None:
    """RELAY_AUTH_MODE=none is an explicit opt-out."""
    with client_for(tmp_path, auth_mode="none") as client:
        assert client.post("/webhook", json=payload()).status_code == 202
