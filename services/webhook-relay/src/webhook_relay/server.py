"""Run the app under uvicorn; exit 0 after a clean, signalled shutdown.

On SIGTERM uvicorn stops accepting, lets in-flight requests finish (up to
``RELAY_GRACEFUL_TIMEOUT_SECONDS``), then the app's lifespan lets in-flight deliveries
finish and returns the rest to the queue. uvicorn re-raises the captured signal once it has
shut down, so the process would die by SIGTERM (exit 143) even after a clean drain; to an
orchestrator that reads as a crash, so the signals are cleared (as the demo app does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from webhook_relay.app import RelayApp

__all__ = ["CleanExitServer", "serve"]


class CleanExitServer(uvicorn.Server):
    """A uvicorn server whose signalled shutdown exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Handle signals as uvicorn does, without re-raising them afterwards."""
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def serve(app: RelayApp, *, host: str, port: int, graceful_timeout_seconds: float) -> None:
    """Serve ``app`` until a signal stops it."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our JSON logging is configured already
        access_log=False,  # accepts and rejections are logged by the app, with trace ids
        server_header=False,
        timeout_graceful_shutdown=int(graceful_timeout_seconds),
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )
    CleanExitServer(config).run()
