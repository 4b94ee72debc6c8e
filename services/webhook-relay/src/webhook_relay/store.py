"""The durable store: notifications, the delivery queue, idempotency keys, audit chain.

SQLite (WAL, ``synchronous=FULL``: every commit is fsync'd) by default; Postgres when the
URL says so, where several replicas share one queue: workers claim rows with
``FOR UPDATE SKIP LOCKED`` and the idempotency table's primary key makes duplicates from
Alertmanager HA peers collapse across replicas. Everything here is synchronous (SQLAlchemy
Core); the web app calls it from threads.

Delivery states: pending -> inflight (claimed, with a lease) -> delivered | pending (retry)
| dead. A worker that dies leaves its lease to expire; another claims the row again. A
delivery is not claimed while an earlier one of the same target and group is pending or
inflight, so each group reaches each target in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from webhook_relay.errors import StoreUnavailableError

__all__ = [
    "GENESIS_HASH",
    "AcceptItem",
    "AcceptResult",
    "AuditVerification",
    "ClaimedDelivery",
    "Finish",
    "QueueStat",
    "Store",
    "engine_url",
]

GENESIS_HASH = "0" * 64
_AUDIT_LOCK_ID = 0x5245_4C41  # "RELA": the advisory lock that serialises audit appends

metadata = MetaData()

# Driver-level SQL of the accept path, written with qmark placeholders (SQLite's);
# Store._sql turns them into psycopg's %s for Postgres.
_UPSERT_KEYS = (
    "INSERT INTO relay_idempotency (key, expires_at) VALUES {values} "
    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE relay_idempotency.expires_at < ? RETURNING key"
)
_INSERT_NOTIFICATION = (
    "INSERT INTO relay_notifications (received_at, receiver, group_key, status, "
    "idempotency_key, payload, traceparent) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"
)
_INSERT_DELIVERY = (
    "INSERT INTO relay_deliveries (notification_id, target, rule, group_key, state, attempts, "
    "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)"
)
_FINISH = (
    "UPDATE relay_deliveries SET state = ?, attempts = ?, owner = NULL, lease_until = NULL, "
    "updated_at = ?, last_error = ?, last_reason = ?, "
    "next_attempt_at = COALESCE(?, next_attempt_at), "
    "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END "
    "WHERE id = ? AND owner = ? AND state = 'inflight'"
)
_INSERT_AUDIT = "INSERT INTO relay_audit (at, kind, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?)"

notifications = Table(
    "relay_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", Float, nullable=False),
    Column("receiver", String(256), nullable=False),
    Column("group_key", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("traceparent", String(64)),
)

deliveries = Table(
    "relay_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", Integer, nullable=False, index=True),
    Column("target", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("group_key", String(64), nullable=False),  # sha256 of groupKey: bounded index size
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float),
    Column("owner", String(64)),
    Column("last_error", Text),
    Column("last_reason", String(32)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("delivered_at", Float),
    Index("relay_deliveries_due", "state", "next_attempt_at"),
    Index("relay_deliveries_group", "target", "group_key", "id"),
)

idempotency = Table(
    "relay_idempotency",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

target_state = Table(
    "relay_target_state",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

audit = Table(
    "relay_audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_anchor = Table(
    "relay_audit_anchor",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("pruned_through", Integer, nullable=False),
    # The newest record's hash: cutting records off the end of the chain is caught too.
    Column("head_hash", String(64), nullable=False),
)


def engine_url(url: str) -> str:
    """Return the SQLAlchemy URL for a sqlite:// or postgresql:// URL (psycopg 3 driver)."""
    for plain, full in (
        ("postgres://", "postgresql+psycopg://"),
        ("postgresql://", "postgresql+psycopg://"),
        ("sqlite://", "sqlite+pysqlite://"),
    ):
        if url.startswith(plain):
            return full + url[len(plain) :]
    return url


def sha256_hex(value: str) -> str:
    """Return the hex SHA-256 of a string."""
    return hashlib.sha256(value.encode()).hexdigest()


def audit_hash(prev_hash: str, at: float, kind: str, detail: str) -> str:
    """Return the hash of an audit record chained to the previous one."""
    return sha256_hex(f"{prev_hash}\n{at!r}\n{kind}\n{detail}")


@dataclass(frozen=True)
class AcceptItem:
    """A validated notification waiting for its durable commit."""

    receiver: str
    group_key: str
    status: str
    idempotency_key: str
    payload: str
    traceparent: str | None
    routes: Sequence[tuple[str, str]]  # (target, rule)
    alert_count: int


@dataclass(frozen=True)
class AcceptResult:
    """What the commit did with one item."""

    notification_id: int | None
    duplicate: bool


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery this worker holds a lease on."""

    id: int
    notification_id: int
    target: str
    rule: str
    attempts: int
    created_at: float
    payload: str
    traceparent: str | None


@dataclass(frozen=True)
class Finish:
    """A delivery's outcome, to record if its worker still holds the lease."""

    delivery_id: int
    owner: str
    state: str
    attempts: int
    next_attempt_at: float | None = None
    error: str | None = None
    reason: str | None = None
    audit_kind: str | None = None


@dataclass(frozen=True)
class QueueStat:
    """Count and oldest creation time of deliveries per target and state."""

    target: str
    state: str
    count: int
    oldest: float | None


@dataclass(frozen=True)
class AuditVerification:
    """The result of walking the audit chain."""

    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str = ""


def _canonical(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"))


class Store:
    """Synchronous access to the relay's tables (one instance per process)."""

    def __init__(self, url: str, *, dedup_window_seconds: float = 90.0) -> None:
        self.url = engine_url(url)
        self.dedup_window_seconds = dedup_window_seconds
        self.is_postgres = self.url.startswith("postgresql")
        self.engine = self._create_engine()
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if self.is_postgres else threading.Lock()
        )

    def _create_engine(self) -> Engine:
        if not self.is_postgres:
            engine = create_engine(self.url, pool_size=10, max_overflow=10)

            @event.listens_for(engine, "connect")
            def _connect(dbapi_connection: Any, _record: Any) -> None:
                # Driver-level autocommit: SQLAlchemy's begin below issues BEGIN IMMEDIATE,
                # so a writer takes the lock up front instead of failing on upgrade.
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA busy_timeout = 10000")  # before WAL: two starters
                cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
                cursor.execute("PRAGMA synchronous = FULL")  # fsync every commit: durable
                # No checkpoint inside a commit (it would fsync the database file on the accept
                # path, a pause of tens of ms): the maintenance loop checkpoints instead.
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _begin(connection: Connection) -> None:
                # Writers take the write lock up front (no failed lock upgrade mid-way);
                # readers begin deferred and never block the writer (WAL).
                write = connection.get_execution_options().get("relay_write", False)
                connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        return create_engine(self.url, pool_size=10, max_overflow=10, pool_pre_ping=True)

    def create_schema(self) -> None:
        """Create the tables that are missing (idempotent; safe with several replicas)."""
        with self._transaction() as connection:
            if self.is_postgres:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _AUDIT_LOCK_ID + 1}
                )
            metadata.create_all(connection)
            if connection.execute(select(audit_anchor.c.id)).first() is None:
                connection.execute(
                    insert(audit_anchor).values(
                        id=1, hash=GENESIS_HASH, pruned_through=0, head_hash=GENESIS_HASH
                    )
                )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """Run one transaction; the store's own transient failures become StoreUnavailableError."""
        try:
            # SQLite: one writer at a time per process, queued on a Python lock. Left to
            # SQLite, a waiting writer sleeps in its busy handler (steps of up to 100 ms)
            # even after the lock is free, which put whole seconds on accepts under load.
            with (
                self._write_lock,
                self.engine.connect().execution_options(relay_write=True) as connection,
                connection.begin(),
            ):
                yield connection
        except (OperationalError, DBAPIError) as error:
            if isinstance(error, OperationalError) or error.connection_invalidated:
                msg = f"the store is unavailable: {type(error.orig).__name__}: {error.orig}"
                raise StoreUnavailableError(msg) from error
            raise

    def checkpoint(self) -> None:
        """Copy the SQLite WAL into the database file, not blocking writers (no-op on Postgres)."""
        if self.is_postgres:
            return
        with self.engine.connect() as connection:
            driver = connection.connection.driver_connection
            if driver is not None:  # the raw connection: a checkpoint runs outside transactions
                driver.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def ping(self) -> None:
        """Run a trivial query (readiness)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as error:
            msg = f"the store is unavailable: {error.orig}"
            raise StoreUnavailableError(msg) from error

    # --- audit ------------------------------------------------------------------------------

    def _append_audit(
        self, connection: Connection, records: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """Append records to the chain (callers hold the transaction)."""
        if not records:
            return
        if self.is_postgres:
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _AUDIT_LOCK_ID})
        previous = connection.execute(
            select(audit_anchor.c.head_hash).where(audit_anchor.c.id == 1)
        ).scalar_one()
        rows = []
        for kind, detail in records:
            at = time.time()
            body = _canonical(detail)
            digest = audit_hash(previous, at, kind, body)
            rows.append(
                {"at": at, "kind": kind, "detail": body, "prev_hash": previous, "hash": digest}
            )
            previous = digest
        connection.execute(insert(audit), rows)
        connection.execute(
            update(audit_anchor).where(audit_anchor.c.id == 1).values(head_hash=previous)
        )

    def verify_audit(self) -> AuditVerification:
        """Walk the chain from the anchor to the head; report the first record that does not fit."""
        with self.engine.connect() as connection:
            anchor = connection.execute(
                select(audit_anchor.c.hash, audit_anchor.c.head_hash).where(audit_anchor.c.id == 1)
            ).first()
            expected = anchor.hash if anchor is not None else GENESIS_HASH
            head = anchor.head_hash if anchor is not None else GENESIS_HASH
            count = 0
            last_seq: int | None = None
            result = connection.execution_options(stream_results=True, yield_per=1000).execute(
                select(audit).order_by(audit.c.seq)
            )
            for row in result:
                count += 1
                last_seq = row.seq
                if row.prev_hash != expected:
                    return AuditVerification(
                        False,
                        count,
                        row.seq,
                        "prev_hash does not match the previous record (removed or reordered)",
                    )
                if audit_hash(row.prev_hash, row.at, row.kind, row.detail) != row.hash:
                    return AuditVerification(
                        False,
                        count,
                        row.seq,
                        "hash does not match the record's content (the record was altered)",
                    )
                expected = row.hash
        if expected != head:
            return AuditVerification(
                False,
                count,
                last_seq,
                "the chain ends before its recorded head (records were cut off the end)",
            )
        return AuditVerification(True, count)

    # --- accepting --------------------------------------------------------------------------

    def accept(self, items: Sequence[AcceptItem]) -> list[AcceptResult]:
        """Store a batch of notifications in ONE transaction (group commit); return per item.

        This is the hot path, so it speaks to the driver directly (SQLAlchemy's per-statement
        work held the GIL long enough to halve the accept rate): one multi-row upsert of the
        idempotency keys (RETURNING the keys that were new or had expired; the others are
        duplicates, across replicas too, since the primary key decides), one insert per new
        notification (for its id), then the deliveries and the audit records in bulk.
        """
        now = time.time()
        first_of_key: dict[str, int] = {}
        for index, item in enumerate(items):
            first_of_key.setdefault(item.idempotency_key, index)
        keys = list(first_of_key)
        with self._transaction() as connection:
            cursor: Any = connection.connection.cursor()  # the driver's own cursor
            values = ",".join(["(?, ?)"] * len(keys))
            cursor.execute(
                self._sql(_UPSERT_KEYS.format(values=values)),
                [*(part for key in keys for part in (key, now + self.dedup_window_seconds)), now],
            )
            fresh_keys = {row[0] for row in cursor.fetchall()}
            ids: dict[int, int] = {}
            insert_sql = self._sql(_INSERT_NOTIFICATION)
            for key, index in first_of_key.items():
                if key not in fresh_keys:
                    continue
                item = items[index]
                cursor.execute(
                    insert_sql,
                    (
                        now,
                        item.receiver,
                        item.group_key,
                        item.status,
                        key,
                        item.payload,
                        item.traceparent,
                    ),
                )
                ids[index] = int(cursor.fetchone()[0])  # RETURNING id: always one row
            rows = [
                (ids[index], target, rule, sha256_hex(items[index].group_key), now, now, now)
                for index in ids
                for target, rule in items[index].routes
            ]
            if rows:
                cursor.executemany(
                    self._sql(_INSERT_DELIVERY),
                    rows,
                )
            results: list[AcceptResult] = []
            records: list[tuple[str, dict[str, Any]]] = []
            for index, item in enumerate(items):
                if index in ids:
                    results.append(AcceptResult(ids[index], duplicate=False))
                    records.append(
                        (
                            "received",
                            {
                                "notification_id": ids[index],
                                "idempotency_key": item.idempotency_key,
                                "receiver": item.receiver,
                                "status": item.status,
                                "alerts": item.alert_count,
                                "payload_sha256": sha256_hex(item.payload),
                                "targets": [target for target, _ in item.routes],
                            },
                        )
                    )
                else:
                    results.append(AcceptResult(None, duplicate=True))
                    records.append(("duplicate", {"idempotency_key": item.idempotency_key}))
            self._append_audit_raw(cursor, records)
            cursor.close()
        return results

    def _sql(self, statement: str) -> str:
        """Return a qmark statement in the driver's placeholder style."""
        return statement.replace("?", "%s") if self.is_postgres else statement

    def _append_audit_raw(self, cursor: Any, records: list[tuple[str, dict[str, Any]]]) -> None:
        """Append records to the chain through a driver cursor (the accept path)."""
        if self.is_postgres:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK_ID,))
        cursor.execute("SELECT head_hash FROM relay_audit_anchor WHERE id = 1")
        previous = str(cursor.fetchone()[0])
        rows = []
        for kind, detail in records:
            at = time.time()
            body = _canonical(detail)
            digest = audit_hash(previous, at, kind, body)
            rows.append((at, kind, body, previous, digest))
            previous = digest
        cursor.executemany(self._sql(_INSERT_AUDIT), rows)
        cursor.execute(
            self._sql("UPDATE relay_audit_anchor SET head_hash = ? WHERE id = 1"), (previous,)
        )

    # --- delivering -------------------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease_seconds: float) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries, oldest first, never two of one target+group.

        Expired leases (a worker that died) go back to pending first; then due pending rows
        are taken in next_attempt_at order, which the (state, next_attempt_at) index serves
        without scanning delivered rows.
        """
        now = time.time()
        locking = "FOR UPDATE OF d SKIP LOCKED" if self.is_postgres else ""
        statement = text(
            f"""
            UPDATE relay_deliveries SET state = 'inflight', owner = :owner,
                lease_until = :lease, updated_at = :now
            WHERE id IN (
                SELECT d.id FROM relay_deliveries d
                WHERE d.state = 'pending' AND d.next_attempt_at <= :now
                  AND NOT EXISTS (
                      SELECT 1 FROM relay_deliveries e
                      WHERE e.target = d.target AND e.group_key = d.group_key AND e.id < d.id
                        AND e.state IN ('pending', 'inflight'))
                ORDER BY d.next_attempt_at, d.id
                LIMIT :limit
                {locking}
            )
            RETURNING id, notification_id, target, rule, attempts, created_at
            """  # noqa: S608 (the only interpolation is a fixed clause)
        )
        expired = (
            update(deliveries)
            .where(deliveries.c.state == "inflight", deliveries.c.lease_until < now)
            .values(state="pending", owner=None, lease_until=None)
        )
        with self._transaction() as connection:
            connection.execute(expired)
            claimed = connection.execute(
                statement,
                {"owner": owner, "lease": now + lease_seconds, "now": now, "limit": limit},
            ).all()
            if not claimed:
                return []
            ids = sorted({row.notification_id for row in claimed})
            bodies = {
                row.id: (row.payload, row.traceparent)
                for row in connection.execute(
                    select(
                        notifications.c.id, notifications.c.payload, notifications.c.traceparent
                    ).where(notifications.c.id.in_(ids))
                )
            }
        return sorted(
            (
                ClaimedDelivery(
                    id=row.id,
                    notification_id=row.notification_id,
                    target=row.target,
                    rule=row.rule,
                    attempts=row.attempts,
                    created_at=row.created_at,
                    payload=bodies[row.notification_id][0],
                    traceparent=bodies[row.notification_id][1],
                )
                for row in claimed
            ),
            key=lambda delivery: delivery.id,
        )

    def finish(
        self,
        delivery_id: int,
        owner: str,
        *,
        state: str,
        attempts: int,
        next_attempt_at: float | None = None,
        error: str | None = None,
        reason: str | None = None,
        audit_kind: str | None = None,
    ) -> bool:
        """Record a delivery's outcome if this worker still holds it; return whether it did."""
        now = time.time()
        values: dict[str, Any] = {
            "state": state,
            "attempts": attempts,
            "owner": None,
            "lease_until": None,
            "updated_at": now,
            "last_error": error,
            "last_reason": reason,
        }
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if state == "delivered":
            values["delivered_at"] = now
        with self._transaction() as connection:
            done = connection.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.owner == owner,
                    deliveries.c.state == "inflight",
                )
                .values(**values)
            ).rowcount
            if done and audit_kind is not None:
                self._append_audit(
                    connection,
                    [
                        (
                            audit_kind,
                            {"delivery_id": delivery_id, "attempts": attempts, "reason": reason},
                        )
                    ],
                )
        return bool(done)

    def finish_many(self, outcomes: Sequence[Finish]) -> list[bool]:
        """Record many outcomes in ONE transaction (the workers' group commit)."""
        now = time.time()
        done: list[bool] = []
        records: list[tuple[str, dict[str, Any]]] = []
        statement = self._sql(_FINISH)
        with self._transaction() as connection:
            cursor: Any = connection.connection.cursor()  # the driver's own cursor
            for outcome in outcomes:
                cursor.execute(
                    statement,
                    (
                        outcome.state,
                        outcome.attempts,
                        now,
                        outcome.error,
                        outcome.reason,
                        outcome.next_attempt_at,
                        outcome.state,
                        now,
                        outcome.delivery_id,
                        outcome.owner,
                    ),
                )
                held = cursor.rowcount == 1
                done.append(held)
                if held and outcome.audit_kind is not None:
                    records.append(
                        (
                            outcome.audit_kind,
                            {
                                "delivery_id": outcome.delivery_id,
                                "attempts": outcome.attempts,
                                "reason": outcome.reason,
                            },
                        )
                    )
            if records:
                self._append_audit_raw(cursor, records)
            cursor.close()
        return done

    def release(self, owner: str, ids: Sequence[int] | None = None) -> int:
        """Return this worker's leased deliveries to the queue (graceful shutdown)."""
        condition = [deliveries.c.owner == owner, deliveries.c.state == "inflight"]
        if ids is not None:
            condition.append(deliveries.c.id.in_(list(ids)))
        with self._transaction() as connection:
            return connection.execute(
                update(deliveries)
                .where(*condition)
                .values(state="pending", owner=None, lease_until=None)
            ).rowcount

    # --- dead letters -----------------------------------------------------------------------

    def dead_letters(self, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """List dead deliveries, oldest first."""
        query = select(
            deliveries.c.id,
            deliveries.c.notification_id,
            deliveries.c.target,
            deliveries.c.rule,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.last_reason,
            deliveries.c.created_at,
            deliveries.c.updated_at,
        ).where(deliveries.c.state == "dead")
        if target is not None:
            query = query.where(deliveries.c.target == target)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(deliveries.c.id).limit(limit)).mappings().all()
        return [dict(row) for row in rows]

    def replay(self, ids: Sequence[int] | None = None, target: str | None = None) -> int:
        """Queue dead deliveries again (all, some ids, or one target's); return how many."""
        condition = [deliveries.c.state == "dead"]
        if ids is not None:
            condition.append(deliveries.c.id.in_(list(ids)))
        if target is not None:
            condition.append(deliveries.c.target == target)
        now = time.time()
        with self._transaction() as connection:
            replayed = [
                row.id
                for row in connection.execute(
                    update(deliveries)
                    .where(*condition)
                    .values(
                        state="pending",
                        attempts=0,
                        next_attempt_at=now,
                        updated_at=now,
                        last_error=None,
                    )
                    .returning(deliveries.c.id)
                )
            ]
            if replayed:
                self._append_audit(connection, [("replayed", {"delivery_ids": sorted(replayed)})])
        return len(replayed)

    # --- state, stats, retention -------------------------------------------------------------

    def get_state(self, target: str, key: str) -> dict[str, Any] | None:
        """Return a target's saved state for a key."""
        with self.engine.connect() as connection:
            value = connection.execute(
                select(target_state.c.value).where(
                    target_state.c.target == target, target_state.c.key == sha256_hex(key)
                )
            ).scalar_one_or_none()
        return None if value is None else dict(json.loads(value))

    def put_state(self, target: str, key: str, value: dict[str, Any]) -> None:
        """Save a target's state for a key (insert or replace)."""
        module = postgresql if self.is_postgres else sqlite
        statement = module.insert(target_state).values(
            target=target, key=sha256_hex(key), value=json.dumps(value), updated_at=time.time()
        )
        statement = statement.on_conflict_do_update(
            index_elements=[target_state.c.target, target_state.c.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
        with self._transaction() as connection:
            connection.execute(statement)

    def queue_stats(self) -> list[QueueStat]:
        """Return count and oldest creation time per target for pending, inflight and dead."""
        query = (
            select(
                deliveries.c.target,
                deliveries.c.state,
                func.count(),
                func.min(deliveries.c.created_at),
            )
            .where(deliveries.c.state.in_(["pending", "inflight", "dead"]))
            .group_by(deliveries.c.target, deliveries.c.state)
        )
        with self.engine.connect() as connection:
            return [
                QueueStat(row[0], row[1], int(row[2]), row[3]) for row in connection.execute(query)
            ]

    def delivery_counts(self) -> dict[str, int]:
        """Return the number of deliveries per state (tests and the CLI)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
            ).all()
        return {str(row[0]): int(row[1]) for row in rows}

    def prune(self, retention_seconds: float) -> dict[str, int]:
        """Delete what is older than the retention: audit prefix, finished rows, stale keys."""
        now = time.time()
        cutoff = now - retention_seconds
        removed: dict[str, int] = {}
        with self._transaction() as connection:
            if self.is_postgres:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _AUDIT_LOCK_ID}
                )
            last = connection.execute(
                select(audit.c.seq, audit.c.hash)
                .where(audit.c.at < cutoff)
                .order_by(audit.c.seq.desc())
                .limit(1)
            ).first()
            if last is not None:
                connection.execute(
                    update(audit_anchor)
                    .where(audit_anchor.c.id == 1)
                    .values(hash=last.hash, pruned_through=last.seq)
                )
                removed["audit"] = connection.execute(
                    delete(audit).where(audit.c.seq <= last.seq)
                ).rowcount
            removed["deliveries"] = connection.execute(
                delete(deliveries).where(
                    deliveries.c.state == "delivered", deliveries.c.updated_at < cutoff
                )
            ).rowcount
            pending = (
                select(deliveries.c.id)
                .where(deliveries.c.notification_id == notifications.c.id)
                .exists()
            )
            removed["notifications"] = connection.execute(
                delete(notifications).where(notifications.c.received_at < cutoff, ~pending)
            ).rowcount
            removed["idempotency"] = connection.execute(
                delete(idempotency).where(idempotency.c.expires_at < now)
            ).rowcount
            removed["target_state"] = connection.execute(
                delete(target_state).where(target_state.c.updated_at < cutoff)
            ).rowcount
        return removed
