"""The HTTP side: status page, JSON API, /metrics and health endpoints (Starlette)."""

from synthetic_monitor.web.app import create_app

__all__ = ["create_app"]
