"""Run a service under uvicorn with a graceful, load-balancer-friendly shutdown.

On SIGTERM (or SIGINT): readiness turns 503 at once, requests are still served for
``DEMO_SHUTDOWN_DELAY_SECONDS`` so load balancers notice and stop sending, then uvicorn
stops accepting, lets in-flight requests finish for up to
``DEMO_GRACEFUL_TIMEOUT_SECONDS``, and the app's lifespan closes its pools and flushes
telemetry. A second signal skips the delay.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from lookout_demo.web.lifecycle import Lifecycle

__all__ = ["GracefulServer", "serve"]

log = logging.getLogger("lookout_demo.lifecycle")


class GracefulServer(uvicorn.Server):
    """A uvicorn server that drains before it stops listening."""

    def __init__(self, config: uvicorn.Config, *, shutdown_delay_seconds: float) -> None:
        super().__init__(config)
        self.shutdown_delay_seconds = shutdown_delay_seconds
        self._draining_since_signal = False
        self._timer: threading.Timer | None = None

    def _lifecycle(self) -> Lifecycle | None:
        app = self.config.loaded_app if self.config.loaded else None
        while app is not None and not isinstance(app, FastAPI):
            app = getattr(app, "app", None)  # unwrap uvicorn's proxy-headers/ASGI wrappers
        return getattr(app.state, "lifecycle", None) if isinstance(app, FastAPI) else None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Handle signals as uvicorn does, but exit 0 after a clean, signalled shutdown.

        uvicorn re-raises the captured signal once it has shut down, so the process dies by
        SIGTERM (exit 143) even when every request drained; to an orchestrator that reads
        as a crash.
        """
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start draining on the first signal; stop at once on the second."""
        if self._draining_since_signal or self.shutdown_delay_seconds <= 0:
            if self._timer is not None:
                self._timer.cancel()
            super().handle_exit(sig, frame)
            return
        self._draining_since_signal = True
        lifecycle = self._lifecycle()
        if lifecycle is not None:
            lifecycle.start_draining()
        log.info(
            "shutdown requested: draining",
            extra={
                "signal": signal.Signals(sig).name,
                "delay_seconds": self.shutdown_delay_seconds,
            },
        )
        self._timer = threading.Timer(
            self.shutdown_delay_seconds, super().handle_exit, args=(sig, frame)
        )
        self._timer.daemon = True
        self._timer.start()


def serve(
    app: str,
    *,
    host: str,
    port: int,
    workers: int,
    shutdown_delay_seconds: float,
    graceful_timeout_seconds: float,
) -> None:
    """Serve an app factory (``module:function``) until a signal stops it."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "factory": True,
        "log_config": None,  # our JSON logging is configured already
        "access_log": False,  # the app writes its own access log, with trace ids
        "server_header": False,
        "proxy_headers": True,
        "timeout_graceful_shutdown": graceful_timeout_seconds,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
    }
    if workers <= 1:
        config = uvicorn.Config(app, **options)
        GracefulServer(config, shutdown_delay_seconds=shutdown_delay_seconds).run()
        return
    # Several workers: uvicorn's own supervisor. Each worker still finishes its in-flight
    # requests on SIGTERM, but without the readiness-503 delay (that needs our server class
    # inside uvicorn's worker processes); compose runs one worker per container instead.
    uvicorn.run(app, workers=workers, **options)
