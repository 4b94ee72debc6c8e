"""What a check found: per query (target), per panel, for the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["STATUSES", "PanelResult", "Status", "TargetResult", "worst"]

Status = Literal["data", "empty", "error", "unchecked"]
#: Report order, worst first. "unchecked" = not checkable here: never counted as passed.
STATUSES: tuple[Status, ...] = ("error", "empty", "unchecked", "data")


def worst(statuses: list[Status]) -> Status:
    """Return the worst of the statuses (error > empty > unchecked > data)."""
    for status in STATUSES:
        if status in statuses:
            return status
    return "empty"


@dataclass
class TargetResult:
    """One query of a panel, as run."""

    ref_id: str
    datasource: str  # prometheus, loki, tempo, expression, ...
    status: Status
    detail: str
    query: str = ""  # the query sent, variables substituted
    seconds: float = 0.0


@dataclass
class PanelResult:
    """One panel (one repetition of a repeated panel)."""

    file: str
    dashboard_uid: str
    panel_id: int | None
    title: str
    type: str
    row: str | None = None
    repeat: str | None = None  # "service=shop" for one repetition of a repeated panel
    status: Status = "data"
    detail: str = ""
    targets: list[TargetResult] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Return how a person finds the panel: ``#3 "Request rate" (service=shop)``."""
        ident = f"#{self.panel_id} " if self.panel_id is not None else ""
        extra = f" ({self.repeat})" if self.repeat else ""
        return f'{ident}"{self.title}"{extra}'

    def settle(self) -> None:
        """Set the panel's status from its targets' (unless it was set with no targets)."""
        if self.targets:
            self.status = worst([t.status for t in self.targets])
