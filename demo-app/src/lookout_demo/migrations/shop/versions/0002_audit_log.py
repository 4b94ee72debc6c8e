"""Audit log: append-only, hash-chained security events (see lookout_demo.storage.audit).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from lookout_demo.storage.audit_model import create_audit_log, drop_audit_log

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the audit table and the trigger that keeps it append-only."""
    create_audit_log()


def downgrade() -> None:
    """Drop the audit table (its records are gone: export them first)."""
    drop_audit_log()
