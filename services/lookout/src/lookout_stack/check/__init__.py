"""``lookout check``: prove, panel by panel, that the dashboards' queries return data.

Modules: ``model`` (the dashboard JSON model), ``timing`` (ranges and Grafana's interval
rules), ``variables`` (template variables), ``backends`` (direct mode: Prometheus, Loki,
Tempo), ``grafana`` (the /api/ds/query mode), ``runner`` (concurrency, repeats), ``report``
(table and JSON), ``command`` (the CLI).
"""

from __future__ import annotations

from lookout_stack.check.command import handle, register

__all__ = ["handle", "register"]
