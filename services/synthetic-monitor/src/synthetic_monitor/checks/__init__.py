"""Step types behind one small interface (``StepExecutor``), one module each.

``EXECUTORS`` maps a step's ``type`` to its executor. An unknown type cannot reach here: the
configuration model only admits these four, so a typo fails at load time.
"""

from __future__ import annotations

from synthetic_monitor.checks.base import StepContext, StepExecutor, StepOutcome
from synthetic_monitor.checks.dns import DnsExecutor
from synthetic_monitor.checks.http import HttpExecutor
from synthetic_monitor.checks.tcp import TcpExecutor
from synthetic_monitor.checks.tls import TlsExecutor

__all__ = ["EXECUTORS", "StepContext", "StepExecutor", "StepOutcome"]

EXECUTORS: dict[str, StepExecutor] = {
    "http": HttpExecutor(),
    "tcp": TcpExecutor(),
    "dns": DnsExecutor(),
    "tls": TlsExecutor(),
}
