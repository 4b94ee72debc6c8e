"""PagerDuty Events API v2: trigger while firing, resolve when resolved, one dedup_key.

The dedup_key is a hash of the target and Alertmanager's groupKey, so every notification of
a group lands on the same incident and the resolve closes it. The summary is cut to 1,024
characters. Reference: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from webhook_relay.targets.base import DeliveryContext, TargetConfig, post_json
from webhook_relay.templating import truncate

__all__ = ["MAX_SUMMARY_CHARS", "PagerDutyConfig", "PagerDutyTarget", "dedup_key"]

MAX_SUMMARY_CHARS = 1024
_SEVERITIES = {"critical", "error", "warning", "info"}


class PagerDutyConfig(TargetConfig):
    """Settings of a PagerDuty target."""

    routing_key: str
    url: str = "https://events.pagerduty.com/v2/enqueue"
    source: str = "alertmanager"
    client: str = "Lookout webhook relay"


def dedup_key(target: str, group_key: str) -> str:
    """Return the stable dedup_key of a group (at most 255 characters, as required)."""
    return hashlib.sha256(f"{target}\x00{group_key}".encode()).hexdigest()


class PagerDutyTarget:
    """Trigger and resolve PagerDuty incidents."""

    kind: ClassVar[str] = "pagerduty"

    def __init__(self, name: str, config: PagerDutyConfig) -> None:
        self.name = name
        self.config = config

    def event(self, context: DeliveryContext) -> dict[str, Any]:
        """Return the Events v2 body for this notification."""
        notification = context.notification
        message = context.message
        key = dedup_key(self.name, notification.groupKey)
        if notification.status == "resolved":
            return {
                "routing_key": self.config.routing_key,
                "event_action": "resolve",
                "dedup_key": key,
            }
        severity = message.severity if message.severity in _SEVERITIES else "error"
        shown = [line.text for line in message.lines[:20]]
        more = message.more_text(len(shown))
        body: dict[str, Any] = {
            "routing_key": self.config.routing_key,
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": truncate(message.title, MAX_SUMMARY_CHARS),
                "source": self.config.source,
                "severity": severity,
                "timestamp": notification.alerts[0].startsAt.isoformat(),
                "group": notification.groupLabels.get("alertname", notification.receiver),
                "custom_details": {
                    "alerts": shown + ([more] if more else []),
                    "groupLabels": notification.groupLabels,
                    "commonLabels": notification.commonLabels,
                    "commonAnnotations": notification.commonAnnotations,
                },
            },
            "client": self.config.client,
        }
        if notification.externalURL:
            body["client_url"] = notification.externalURL
            body["links"] = [{"href": notification.externalURL, "text": "Alertmanager"}]
        return body

    async def deliver(self, context: DeliveryContext) -> None:
        """Send the event."""
        await post_json(context, self.config.url, self.event(context), "PagerDuty")
