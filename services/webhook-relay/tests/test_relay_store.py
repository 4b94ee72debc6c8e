"""The store on SQLite and on Postgres: idempotency across replicas, exclusive claims, state."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay_support import payload, require
from webhook_relay.payload import Notification, idempotency_key
from webhook_relay.store import AcceptItem, Finish, Store

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def item(group: str, routes: list[tuple[str, str]] | None = None) -> AcceptItem:
    """Return an accept item for a one-alert notification of ``group``."""
    notification = Notification.model_validate(payload(group=group))
    return AcceptItem(
        receiver="relay",
        group_key=group,
        status="firing",
        idempotency_key=idempotency_key(notification),
        payload=notification.model_dump_json(),
        traceparent=None,
        routes=routes if routes is not None else [("hook", "all")],
        alert_count=1,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a throwaway Postgres database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    psycopg = pytest.importorskip("psycopg")
    name = f"relay_store_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        require(False, f"Postgres on 127.0.0.1:5432 ({error})")
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_duplicates_collapse_across_replicas_and_within_a_batch(store_url: str) -> None:
    """Two store instances (replicas) accepting the same key concurrently store it once."""
    replicas = [Store(store_url, dedup_window_seconds=60) for _ in range(2)]
    replicas[0].create_schema()
    replicas[1].create_schema()
    results: list[bool] = []
    lock = threading.Lock()

    def accept(store: Store) -> None:
        outcome = store.accept([item("g1"), item("g1")])
        with lock:
            results.extend(not r.duplicate for r in outcome)

    threads = [threading.Thread(target=accept, args=(store,)) for store in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert replicas[0].delivery_counts() == {"pending": 1}
    assert replicas[0].verify_audit().ok
    for store in replicas:
        store.dispose()


def test_expired_key_is_accepted_again(store_url: str) -> None:
    """After the window, the same notification is a new one."""
    store = Store(store_url, dedup_window_seconds=0.2)
    store.create_schema()
    assert not store.accept([item("g")])[0].duplicate
    assert store.accept([item("g")])[0].duplicate
    time.sleep(0.3)
    assert not store.accept([item("g")])[0].duplicate
    store.dispose()


def test_claims_are_exclusive_and_ordered_per_group(store_url: str) -> None:
    """Two workers never hold the same delivery; a group's second waits for its first."""
    store = Store(store_url)
    store.create_schema()
    first = store.accept([item("a")])[0].notification_id
    store.accept([item("b")])
    resolved = Notification.model_validate(payload(group="a", status="resolved"))
    store.accept(
        [
            AcceptItem(
                "relay",
                "a",
                "resolved",
                idempotency_key(resolved),
                resolved.model_dump_json(),
                None,
                [("hook", "all")],
                1,
            )
        ]
    )
    one = store.claim("w1", 10, 30)
    two = store.claim("w2", 10, 30)
    assert {d.notification_id for d in one} >= {first}
    assert len(one) == 2  # a's first and b: a's resolve waits behind a's first
    assert two == []
    a_first = next(d for d in one if d.notification_id == first)
    assert store.finish_many([Finish(a_first.id, "w2", state="delivered", attempts=1)]) == [False]
    assert store.finish_many(
        [Finish(a_first.id, "w1", state="delivered", attempts=1, audit_kind="delivered")]
    ) == [True]
    (follower,) = store.claim("w2", 10, 30)
    assert follower.notification_id not in {d.notification_id for d in one}
    store.dispose()


def test_target_state_round_trip(store_url: str) -> None:
    """Slack's message ids survive in the store, replaced on update."""
    store = Store(store_url)
    store.create_schema()
    assert store.get_state("slack", "group") is None
    store.put_state("slack", "group", {"channel": "C1", "ts": "1.0"})
    store.put_state("slack", "group", {"channel": "C1", "ts": "2.0"})
    assert store.get_state("slack", "group") == {"channel": "C1", "ts": "2.0"}
    store.dispose()
