"""The audit trail: records chained by hash, tampering detected, retention keeps the chain valid."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from relay_support import payload
from webhook_relay.cli import main
from webhook_relay.payload import Notification, idempotency_key
from webhook_relay.store import AcceptItem, Store, audit


def filled_store(tmp_path: Path, count: int = 5) -> Store:
    """Return a store with ``count`` accepted notifications (one audit record each)."""
    store = Store(f"sqlite:///{tmp_path / 'audit.db'}")
    store.create_schema()
    for index in range(count):
        notification = Notification.model_validate(payload(group=f"g{index}"))
        store.accept(
            [
                AcceptItem(
                    receiver="relay",
                    group_key=notification.groupKey,
                    status="firing",
                    idempotency_key=idempotency_key(notification),
                    payload=notification.model_dump_json(),
                    traceparent=None,
                    routes=[("hook", "all")],
                    alert_count=1,
                )
            ]
        )
    return store


def test_chain_verifies(tmp_path: Path) -> None:
    """An untouched chain verifies, record by record."""
    result = filled_store(tmp_path).verify_audit()
    assert result.ok
    assert result.records == 5


def test_altered_record_is_detected(tmp_path: Path) -> None:
    """Changing a record's content breaks its hash; the first bad record is named."""
    store = filled_store(tmp_path)
    with store.engine.begin() as connection:
        connection.execute(update(audit).where(audit.c.seq == 3).values(detail='{"forged":true}'))
    result = store.verify_audit()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "altered" in result.problem


def test_removed_record_is_detected(tmp_path: Path) -> None:
    """Deleting a record from the middle breaks the chain at the next one."""
    store = filled_store(tmp_path)
    with store.engine.begin() as connection:
        connection.execute(delete(audit).where(audit.c.seq == 2))
    result = store.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_retention_prunes_prefix_and_chain_still_verifies(tmp_path: Path) -> None:
    """Pruning old records moves the anchor; the rest still verifies, and a later cut is caught."""
    store = filled_store(tmp_path, 3)
    time.sleep(0.05)
    cutoff_marker = time.time()
    notification = Notification.model_validate(payload(group="late"))
    store.accept(
        [
            AcceptItem(
                "relay",
                "late",
                "firing",
                idempotency_key(notification),
                notification.model_dump_json(),
                None,
                [],
                1,
            )
        ]
    )
    removed = store.prune(retention_seconds=time.time() - cutoff_marker)
    assert removed["audit"] == 3
    result = store.verify_audit()
    assert (result.ok, result.records) == (True, 1)
    with store.engine.begin() as connection:
        first = connection.execute(select(audit.c.seq)).scalar_one()
        connection.execute(delete(audit).where(audit.c.seq == first))
    store.accept(
        [
            AcceptItem(
                "relay", "later", "firing", "k" * 64, notification.model_dump_json(), None, [], 1
            )
        ]
    )
    assert not store.verify_audit().ok


def test_cli_verify_audit_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`webhook-relay verify-audit` exits 0 on a good chain and 1 on a broken one."""
    store = filled_store(tmp_path)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    assert main(["verify-audit", "--database-url", url]) == 0
    assert '"ok": true' in capsys.readouterr().out
    with store.engine.begin() as connection:
        connection.execute(update(audit).where(audit.c.seq == 1).values(kind="delivered"))
    assert main(["verify-audit", "--database-url", url]) == 1
    assert '"first_bad_seq": 1' in capsys.readouterr().out
