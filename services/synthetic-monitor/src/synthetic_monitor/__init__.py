"""Lookout's synthetic monitor: scripted HTTP journeys and simple checks, run on a schedule.

Journeys and checks come from YAML (``config``), run through ``runner`` (steps, conditions,
extractions, secrets, retries, cleanup), and turn into Prometheus metrics (``metrics``),
traces and JSON logs (``telemetry``), history (``storage``) and a status page (``web``).
``cli`` wires the three commands: ``serve``, ``run`` and ``check``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
