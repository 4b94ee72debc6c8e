"""Alembic environment of the payments schema (run by storage.migrations.migrate)."""

from lookout_demo.storage.migrations import run_alembic_env

run_alembic_env("payments")
