"""The exceptions of ``lookout check``, in one place."""

from __future__ import annotations

__all__ = ["CheckInputError", "QueryError", "VariableError"]


class CheckInputError(ValueError):
    """A dashboard file or an option is unusable; the message names the file and field."""


class VariableError(ValueError):
    """A template variable could not be resolved; the message names the variable."""


class QueryError(RuntimeError):
    """A backend answered a query with an error, or could not be reached."""
