"""The relay's own log: each notification as one JSON log line (demos, and a safe default).

In compose, with no chat or paging service configured, alerts still visibly arrive: the
line lands in Loki with the notification's trace id.
"""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

from webhook_relay.targets.base import DeliveryContext, TargetConfig

__all__ = ["LogConfig", "LogTarget"]

log = logging.getLogger("webhook_relay.notifications")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class LogConfig(TargetConfig):
    """Settings of a log target."""

    level: Literal["debug", "info", "warning"] = "warning"


class LogTarget:
    """Write the notification to the relay's log."""

    kind: ClassVar[str] = "log"

    def __init__(self, name: str, config: LogConfig) -> None:
        self.name = name
        self.config = config

    async def deliver(self, context: DeliveryContext) -> None:
        """Log one line with the title and every alert line."""
        message = context.message
        log.log(
            _LEVELS[self.config.level],
            message.title,
            extra={
                "target": self.name,
                "receiver": context.notification.receiver,
                "status": message.status,
                "severity": message.severity,
                "alerts": [line.text for line in message.lines[:50]],
                "more": message.more_text(min(len(message.lines), 50)),
            },
        )
