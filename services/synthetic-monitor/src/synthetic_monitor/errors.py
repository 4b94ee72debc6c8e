"""Every exception the monitor raises on purpose, in one module."""

from __future__ import annotations

__all__ = ["ConditionError", "ConfigError", "ConfigErrors", "MonitorError", "TemplateError"]


class MonitorError(Exception):
    """Base class of the monitor's own errors."""


class ConfigError(MonitorError):
    """One problem in a configuration file, located by file, line and field."""

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


class ConfigErrors(MonitorError):
    """Every problem found while loading a configuration, reported together."""

    def __init__(self, errors: list[ConfigError]) -> None:
        """Keep the individual errors (at least one)."""
        self.errors = errors
        super().__init__(str(self))

    def __str__(self) -> str:
        """Return one line per error."""
        count = len(self.errors)
        head = f"{count} configuration error{'s' if count != 1 else ''}:"
        return "\n".join([head, *(f"  {error}" for error in self.errors)])


class ConditionError(ValueError):
    """A condition string cannot be parsed; the message says what would be right."""


class TemplateError(ValueError):
    """A ``{{ name }}`` reference names nothing that is defined at that point."""
