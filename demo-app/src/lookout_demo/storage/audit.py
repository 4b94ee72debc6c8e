"""The audit log: security-relevant events, append-only, each record chained by hash.

Each record's ``hash`` is the SHA-256 of the previous record's hash and its own fields
(``at``, ``category``, ``action``, ``actor``, ``details``), so changing, removing or
reordering a record breaks the chain at the first record after it; ``verify`` names it.
The table refuses UPDATE (and, on Postgres, DELETE outside a retention prune) by trigger.

Categories: ``security`` (logins), ``admin`` (admin API calls), ``fault`` (fault-injection
changes), ``migration`` (schema migrations), ``audit`` (exports, prunes, restores).

Retention: records are kept 7 years (``RETENTION``). ``prune`` first exports the records
older than that to a JSON-lines file and verifies the export, then deletes them and appends
an ``audit_pruned`` record naming the last pruned hash, so the remaining chain still starts
from a known point. ``restore`` puts exported records back after checking that they chain
on their own and into the records that follow them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from lookout_demo.storage.audit_model import AuditRecord
from lookout_demo.storage.database import Database
from lookout_telemetry.scrub import scrub

__all__ = [
    "CATEGORIES",
    "GENESIS_HASH",
    "RETENTION",
    "AuditLog",
    "Verification",
    "record_hash",
    "verify_chain",
]

log = logging.getLogger("lookout_demo.audit")

#: The ``prev_hash`` of the first record ever written.
GENESIS_HASH = "0" * 64
#: How long audit records are kept before a prune may export and remove them (7 years).
RETENTION = timedelta(days=7 * 365 + 2)
CATEGORIES = frozenset({"security", "admin", "fault", "migration", "audit"})
#: Postgres advisory-lock key that serialises appends (the chain needs the previous hash).
_APPEND_LOCK_ID = 0xA0D17


def _canonical_time(at: datetime) -> str:
    """Return a timestamp as UTC ISO text with microseconds, whatever the driver returned."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def record_hash(
    prev_hash: str, at: datetime, *, category: str, action: str, actor: str, details: str
) -> str:
    """Return the chain hash of one record."""
    canonical = json.dumps(
        [prev_hash, _canonical_time(at), category, action, actor, details],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Verification:
    """The outcome of walking a chain: how many records, and the first broken one."""

    checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    last_hash: str | None = None

    @property
    def ok(self) -> bool:
        """Tell whether every record chained."""
        return self.first_broken_id is None


def _as_row(record: AuditRecord | dict[str, Any]) -> dict[str, Any]:
    if isinstance(record, dict):
        row = dict(record)
        if isinstance(row["at"], str):
            row["at"] = datetime.fromisoformat(row["at"])
        return row
    return {
        "id": record.id,
        "at": record.at,
        "category": record.category,
        "action": record.action,
        "actor": record.actor,
        "details": record.details,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }


def verify_chain(
    records: Iterable[AuditRecord | dict[str, Any]], *, start_hash: str | None = None
) -> Verification:
    """Walk records in id order; return the first whose link or own hash does not hold.

    ``start_hash`` is what the first record's ``prev_hash`` must be; None accepts whatever
    it is (a chain whose older part was pruned starts after a known record).
    """
    expected_prev = start_hash
    checked = 0
    last = None
    for record in records:
        row = _as_row(record)
        checked += 1
        if expected_prev is not None and row["prev_hash"] != expected_prev:
            return Verification(
                checked,
                row["id"],
                f"prev_hash does not match record before it ({expected_prev[:12]}...)",
            )
        computed = record_hash(
            row["prev_hash"],
            row["at"],
            category=row["category"],
            action=row["action"],
            actor=row["actor"],
            details=row["details"],
        )
        if computed != row["hash"]:
            return Verification(checked, row["id"], "its fields do not hash to its stored hash")
        expected_prev = last = row["hash"]
    return Verification(checked, last_hash=last)


class AuditLog:
    """Append to, verify, export, prune and restore one database's audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _lock(self, conn: AsyncConnection) -> None:
        """Serialise writers: Postgres advisory lock; SQLite the file's write lock."""
        if self.db.is_sqlite:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _APPEND_LOCK_ID})

    async def append(
        self,
        category: str,
        action: str,
        *,
        actor: str,
        details: dict[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> str:
        """Append one record (scrubbed details) in its own transaction; return its hash.

        Pass ``conn`` to append inside a transaction the caller holds (and commits).
        """
        if category not in CATEGORIES:
            msg = f"audit category {category!r} is not one of {sorted(CATEGORIES)}"
            raise ValueError(msg)
        body = json.dumps(scrub(details or {}), sort_keys=True, default=str)
        if conn is not None:
            return await self._append(conn, category, action, actor, body)
        async with self.db.engine.connect() as own:
            await self._lock(own)
            digest = await self._append(own, category, action, actor, body)
            await own.commit()
            return digest

    async def _append(
        self, conn: AsyncConnection, category: str, action: str, actor: str, body: str
    ) -> str:
        if not self.db.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _APPEND_LOCK_ID})
        prev = (
            await conn.execute(select(AuditRecord.hash).order_by(AuditRecord.id.desc()).limit(1))
        ).scalar_one_or_none() or GENESIS_HASH
        at = datetime.now(UTC).replace(tzinfo=None)
        digest = record_hash(
            prev, at, category=category, action=action, actor=actor[:120], details=body
        )
        await conn.execute(
            insert(AuditRecord).values(
                at=at,
                category=category,
                action=action,
                actor=actor[:120],
                details=body,
                prev_hash=prev,
                hash=digest,
            )
        )
        return digest

    async def records(self, *, before: datetime | None = None) -> list[dict[str, Any]]:
        """Return records in id order (those older than ``before`` when given)."""
        query = select(AuditRecord).order_by(AuditRecord.id)
        if before is not None:
            query = query.where(AuditRecord.at < before.astimezone(UTC).replace(tzinfo=None))
        async with self.db.sessions() as session:
            return [_as_row(r) for r in (await session.execute(query)).scalars()]

    async def verify(self) -> Verification:
        """Verify the whole chain in the database (from genesis, unless it was pruned)."""
        rows = await self.records()
        pruned = any(r["action"] == "audit_pruned" for r in rows)
        return verify_chain(rows, start_hash=None if pruned else GENESIS_HASH)

    async def export(self, path: Path, *, before: datetime) -> Verification:
        """Write the records older than ``before`` to a JSON-lines file; verify what was written."""
        rows = await self.records(before=before)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps({**row, "at": _canonical_time(row["at"])}) + "\n")
        return verify_chain(read_export(path))

    async def prune(self, export_path: Path, *, now: datetime | None = None) -> int:
        """Export, verify, then delete the records past retention; return how many went."""
        cutoff = (now or datetime.now(UTC)) - RETENTION
        exported = await self.export(export_path, before=cutoff)
        if not exported.ok:
            msg = (
                f"audit export {export_path} does not verify (record {exported.first_broken_id}: "
                f"{exported.reason}); nothing was pruned"
            )
            raise RuntimeError(msg)
        if exported.checked == 0:
            return 0
        rows = read_export(export_path)
        last_id = rows[-1]["id"]
        async with self.db.engine.connect() as conn:
            await self._lock(conn)
            if not self.db.is_sqlite:
                await conn.execute(text("SET LOCAL lookout.audit_prune = 'on'"))
            await conn.execute(delete(AuditRecord).where(AuditRecord.id <= last_id))
            await self._append(
                conn,
                "audit",
                "audit_pruned",
                "retention",
                json.dumps(
                    {
                        "up_to_id": last_id,
                        "last_hash": exported.last_hash,
                        "file": export_path.name,
                    },
                    sort_keys=True,
                ),
            )
            await conn.commit()
        log.warning(
            "audit records pruned after export",
            extra={"security": True, "event": "audit_pruned", "records": exported.checked},
        )
        return exported.checked

    async def restore(self, path: Path) -> int:
        """Insert exported records back (ids kept); return the count.

        The file must verify on its own, its ids must not overlap the log's, and the log's
        first record must chain onto the file's last; otherwise ValueError and nothing is
        inserted (on Postgres the append-only trigger would make a wrong restore permanent).
        """
        rows = read_export(path)
        check = verify_chain(rows)
        if not check.ok:
            msg = f"{path}: record {check.first_broken_id} does not verify ({check.reason})"
            raise RuntimeError(msg)
        if not rows:
            return 0
        first_id, last_id = rows[0]["id"], rows[-1]["id"]
        async with self.db.engine.connect() as conn:
            await self._lock(
                conn
            )  # checks and insert in one transaction; a refusal inserts nothing
            overlap = (
                await conn.execute(
                    select(AuditRecord.id)
                    .where(AuditRecord.id.between(first_id, last_id))
                    .order_by(AuditRecord.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
            if overlap is not None:
                msg = (
                    f"{path}: records {first_id}..{last_id} overlap the audit log "
                    f"(record {overlap} already exists); nothing was restored"
                )
                raise ValueError(msg)
            following = (
                await conn.execute(
                    select(AuditRecord.id, AuditRecord.prev_hash).order_by(AuditRecord.id).limit(1)
                )
            ).one_or_none()
            if following is not None and following.prev_hash != rows[-1]["hash"]:
                msg = (
                    f"{path}: does not chain into the audit log: record {following.id} has "
                    f"prev_hash {following.prev_hash[:12]}..., the file's last record "
                    f"{last_id} has hash {rows[-1]['hash'][:12]}...; nothing was restored"
                )
                raise ValueError(msg)
            await conn.execute(insert(AuditRecord), rows)
            await conn.commit()
        return len(rows)


_EXPORT_FIELDS = ("id", "at", "category", "action", "actor", "details", "prev_hash", "hash")


def read_export(path: Path) -> list[dict[str, Any]]:
    """Read an export file's records, in order; ValueError names the file and line at fault."""
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = f"{path}:{lineno}: not valid JSON ({exc.msg})"
            raise ValueError(msg) from None
        if not isinstance(row, dict):
            msg = f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}"
            raise ValueError(msg)
        missing = [field for field in _EXPORT_FIELDS if field not in row]
        if missing:
            msg = f"{path}:{lineno}: missing field(s) {', '.join(missing)}"
            raise ValueError(msg)
        try:
            rows.append(_as_row(row))
        except (TypeError, ValueError) as exc:
            msg = f"{path}:{lineno}: bad 'at' timestamp ({exc})"
            raise ValueError(msg) from None
    return rows
