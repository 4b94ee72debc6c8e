"""Lookout's Alertmanager webhook relay: accept durably, deduplicate, route, deliver."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
