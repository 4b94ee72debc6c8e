"""Direct mode: one module per backend, each behind the same small :class:`Backend` protocol.

A backend runs one target of a panel against its real HTTP API and says whether it returned
data, nothing, or an error; it also answers query variables (:class:`VariableSource`).
Registered by data source kind in :data:`BACKENDS`; a kind missing there (or whose URL was not
given) is reported as "not checkable here", never as passed.
"""

from __future__ import annotations

from typing import Any, Protocol

from lookout_stack.check.context import QueryContext
from lookout_stack.check.model import TargetSpec
from lookout_stack.check.results import TargetResult
from lookout_stack.check.timing import TimeRange

__all__ = ["Backend"]


class Backend(Protocol):
    """One backend's query API."""

    kind: str

    async def run(self, target: TargetSpec, ctx: QueryContext) -> TargetResult:
        """Run one target over the panel's range; never raise for a backend's answer."""
        ...

    async def options(self, query: Any, time_range: TimeRange) -> list[str]:
        """Return a query variable's options."""
        ...
