"""Where a process is in its life: starting, ready, draining; read by the health endpoints."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Lifecycle"]


@dataclass
class Lifecycle:
    """Start-up and shutdown state of one server process."""

    started_at: float = field(default_factory=time.monotonic)
    #: Set once the schema exists, the catalog is seeded and clients are open.
    startup_complete: bool = False
    #: Set on SIGTERM: readiness reads 503 from then on while requests are still served.
    draining: bool = False
    startup_seconds: float | None = None

    def mark_started(self) -> None:
        """Record that start-up finished."""
        self.startup_complete = True
        self.startup_seconds = time.monotonic() - self.started_at

    def start_draining(self) -> None:
        """Record that the process is shutting down."""
        self.draining = True
