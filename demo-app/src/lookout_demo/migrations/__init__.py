"""Alembic migration scripts, one folder per service schema (``shop``, ``payments``)."""
