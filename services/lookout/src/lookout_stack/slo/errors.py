"""Every exception the SLO generator raises on purpose, in one module."""

from __future__ import annotations

__all__ = ["SloConfigError", "SloConfigErrors", "SloError"]


class SloError(Exception):
    """Base class of the SLO generator's own errors."""


class SloConfigError(SloError):
    """One problem in the SLO file, located by file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        """Keep the location beside the message; ``str()`` puts them together."""
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        """Return ``file:line: field: message`` with the parts that are known."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class SloConfigErrors(SloError):
    """Every problem found in the SLO file, reported together."""

    def __init__(self, errors: list[SloConfigError]) -> None:
        """Keep the individual errors (at least one)."""
        self.errors = errors
        super().__init__(str(self))

    def __str__(self) -> str:
        """Return one line per error."""
        count = len(self.errors)
        head = f"{count} error{'s' if count != 1 else ''} in the SLO file:"
        return "\n".join([head, *(f"  {error}" for error in self.errors)])
