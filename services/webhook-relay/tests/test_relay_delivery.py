"""Delivery behaviour: retries with backoff, Retry-After, order per group, breaker, dead letters."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from relay_support import (
    AUTH,
    Received,
    Receiver,
    alert,
    payload,
    receiver,
    settings,
    write_routing,
)
from webhook_relay.app import create_app
from webhook_relay.cli import main
from webhook_relay.delivery import CircuitBreaker, backoff_delay
from webhook_relay.routing import load_routing
from webhook_relay.store import Store


@contextmanager
def relay(tmp_path: Path, routing: str, **overrides: Any) -> Iterator[TestClient]:
    """Run a relay with ``routing`` and fast timings."""
    path = write_routing(tmp_path, routing)
    app = create_app(settings(tmp_path, path, **overrides), load_routing(path), CollectorRegistry())
    with TestClient(app) as client:
        yield client


def store(tmp_path: Path) -> Store:
    """Open the test relay's store."""
    return Store(f"sqlite:///{tmp_path / 'relay.db'}")


def wait_counts(tmp_path: Path, expected: dict[str, int], timeout: float = 10.0) -> None:
    """Wait until the store's delivery counts equal ``expected``."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = store(tmp_path).delivery_counts()
        if counts == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"delivery counts {counts}, expected {expected}")


def hook(name: str, target: Receiver, path: str = "/in") -> str:
    """Return a routing file sending everything to one webhook target."""
    return f"targets:\n  {name}: {{type: webhook, url: '{target.url}{path}'}}\nfallback: [{name}]\n"


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    """Delays double per attempt within [ceiling/2, ceiling] and stop at the cap."""
    rng = random.Random(1)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (10, 60.0)]:
        delay = backoff_delay(attempt, 1.0, 60.0, rng)
        assert ceiling / 2 <= delay <= ceiling


def test_circuit_breaker_opens_then_half_opens() -> None:
    """After the threshold the breaker holds calls back, then lets one trial through."""
    breaker = CircuitBreaker(threshold=2, cooldown=10.0)
    breaker.failure(100.0)
    assert breaker.allow(100.0) is None
    breaker.failure(100.0)
    assert breaker.allow(105.0) == 110.0
    assert breaker.allow(111.0) is None  # the trial
    assert breaker.allow(111.0) is not None  # only one at a time
    breaker.success()
    assert breaker.allow(111.0) is None


def test_outage_then_recovery_delivers_all_in_order_and_honours_retry_after(tmp_path: Path) -> None:
    """500s then a 429 with Retry-After, then recovery: all delivered, in order per group."""
    answers = iter([500, 500, 500, 429])
    lock = threading.Lock()
    refused_at: list[float] = []

    def flaky(_request: Received) -> tuple[int, dict[str, str], bytes]:
        with lock:
            status = next(answers, 200)
        if status == 429:
            refused_at.append(time.time())
            return 429, {"Retry-After": "1"}, b"slow down"
        return status, {}, b""

    with receiver() as target:
        target.responder = flaky
        with relay(tmp_path, hook("hook", target), max_attempts=10) as client:
            group_a = [payload(group="a", alerts=[alert(fingerprint=f"a{i}")]) for i in range(3)]
            group_b = [payload(group="b", alerts=[alert(fingerprint=f"b{i}")]) for i in range(3)]
            for a_body, b_body in zip(group_a, group_b, strict=True):
                assert client.post("/webhook", json=a_body, headers=AUTH).status_code == 202
                assert client.post("/webhook", json=b_body, headers=AUTH).status_code == 202
            got = target.wait_for(6, timeout=15)
            wait_counts(tmp_path, {"delivered": 6})
            metrics = client.get("/metrics").text
    for group in ("a", "b"):
        order = [r.json()["alerts"][0]["fingerprint"] for r in got if r.json()["groupKey"] == group]
        assert order == [f"{group}0", f"{group}1", f"{group}2"]
    first_after_429 = min(r.at for r in got if r.at > refused_at[0])
    assert first_after_429 - refused_at[0] >= 0.9
    assert 'relay_delivery_failures_total{reason="rate_limited",target="hook"} 1.0' in metrics
    assert 'relay_delivery_retries_total{target="hook"} 4.0' in metrics
    assert len({r.headers["idempotency-key"] for r in got}) == 6


def test_permanent_failure_dead_letters_then_replay_api_delivers(tmp_path: Path) -> None:
    """A 400 dead-letters at once; the replay API queues it again and it is delivered."""
    status = {"code": 400}
    with receiver() as target:
        target.responder = lambda _r: (status["code"], {}, b"bad request")
        with relay(tmp_path, hook("hook", target)) as client:
            client.post("/webhook", json=payload(), headers=AUTH)
            wait_counts(tmp_path, {"dead": 1})
            listed = client.get("/api/v1/dead-letters", headers=AUTH).json()["dead_letters"]
            assert listed[0]["target"] == "hook"
            assert "HTTP 400" in listed[0]["last_error"]
            assert client.get("/api/v1/dead-letters").status_code == 401
            status["code"] = 200
            replayed = client.post(
                "/api/v1/dead-letters/replay", json={"target": "hook"}, headers=AUTH
            )
            assert replayed.json() == {"replayed": 1}
            target.wait_for(1)
            wait_counts(tmp_path, {"delivered": 1})
            assert 'relay_dead_letters_total{target="hook"} 1.0' in client.get("/metrics").text


def test_attempts_exhausted_dead_letters_and_cli_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Transient failures up to max_attempts dead-letter; `webhook-relay replay` re-queues."""
    with receiver() as target:
        target.responder = lambda _r: (503, {}, b"")
        with relay(tmp_path, hook("hook", target), max_attempts=2) as client:
            client.post("/webhook", json=payload(), headers=AUTH)
            wait_counts(tmp_path, {"dead": 1})
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    assert main(["replay", "--list", "--database-url", url]) == 0
    assert '"target": "hook"' in capsys.readouterr().out
    assert main(["replay", "--all", "--database-url", url]) == 0
    assert '"replayed": 1' in capsys.readouterr().out
    assert store(tmp_path).delivery_counts() == {"pending": 1}


def test_partial_fan_out_failure_never_resends_to_the_others(tmp_path: Path) -> None:
    """One target failing for good leaves the other with exactly one delivery; one 202."""
    with receiver() as good, receiver() as bad:
        bad.responder = lambda _r: (500, {}, b"")
        routing = (
            f"targets:\n  good: {{type: webhook, url: '{good.url}/g'}}\n"
            f"  bad: {{type: webhook, url: '{bad.url}/b'}}\n"
            "rules:\n  - name: both\n    targets: [good, bad]\n"
        )
        with relay(tmp_path, routing, max_attempts=3) as client:
            assert client.post("/webhook", json=payload(), headers=AUTH).status_code == 202
            wait_counts(tmp_path, {"delivered": 1, "dead": 1})
            time.sleep(0.3)
        assert len(good.requests) == 1
        assert len(bad.rejected) == 3


def test_circuit_breaker_holds_deliveries_without_spending_attempts(tmp_path: Path) -> None:
    """Once open, the breaker defers deliveries (reason circuit_open), not dead-lettering them."""
    with receiver() as target:
        target.responder = lambda _r: (500, {}, b"")
        # One worker: attempts run one after another, so exactly two reach the target.
        overrides = {
            "breaker_failure_threshold": 2,
            "breaker_cooldown_seconds": 30.0,
            "max_attempts": 3,
            "workers": 1,
        }
        with relay(tmp_path, hook("hook", target), **overrides) as client:
            for index in range(3):
                client.post("/webhook", json=payload(group=f"g{index}"), headers=AUTH)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                text = client.get("/metrics").text
                if 'reason="circuit_open"' in text:
                    break
                time.sleep(0.05)
            assert 'relay_circuit_open{target="hook"} 1.0' in text
            assert 'reason="circuit_open"' in text
            assert len(target.rejected) == 2
            wait_counts(tmp_path, {"pending": 3})


def test_shutdown_returns_unfinished_deliveries_to_the_queue(tmp_path: Path) -> None:
    """A delivery still running after the grace period goes back to pending, not lost."""
    release = threading.Event()

    def slow(_request: Received) -> tuple[int, dict[str, str], bytes]:
        release.wait(5)
        return 200, {}, b""

    with receiver() as target:
        target.responder = slow
        with relay(tmp_path, hook("hook", target), graceful_timeout_seconds=0.3) as client:
            client.post("/webhook", json=payload(), headers=AUTH)
            deadline = time.monotonic() + 5
            while (
                store(tmp_path).delivery_counts() != {"inflight": 1} and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            assert store(tmp_path).delivery_counts() == {"inflight": 1}
        release.set()
    assert store(tmp_path).delivery_counts() == {"pending": 1}


def test_in_flight_delivery_finishes_on_shutdown(tmp_path: Path) -> None:
    """A delivery that completes within the grace period is recorded as delivered."""

    def slowish(_request: Received) -> tuple[int, dict[str, str], bytes]:
        time.sleep(0.3)
        return 200, {}, b""

    with receiver() as target:
        target.responder = slowish
        with relay(tmp_path, hook("hook", target), graceful_timeout_seconds=3.0) as client:
            client.post("/webhook", json=payload(), headers=AUTH)
            deadline = time.monotonic() + 5
            while (
                store(tmp_path).delivery_counts() != {"inflight": 1} and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            assert store(tmp_path).delivery_counts() == {"inflight": 1}
    assert store(tmp_path).delivery_counts() == {"delivered": 1}
