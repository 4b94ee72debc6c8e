"""Lookout's stack CLI: dashboards as code, panel checks against real backends, SLO rules."""

__version__ = "0.1.0"
