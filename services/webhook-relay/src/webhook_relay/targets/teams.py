"""Microsoft Teams through a Workflows webhook: an Adaptive Card 1.4 in a message envelope.

The whole body stays under about 28 KB (Teams' limit); alerts that do not fit are
summarised as "+N more" with a link to Alertmanager.
Reference: https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from webhook_relay.targets.base import DeliveryContext, TargetConfig, post_json
from webhook_relay.templating import Message, truncate

__all__ = ["MAX_BODY_BYTES", "TeamsConfig", "TeamsTarget", "build_card"]

MAX_BODY_BYTES = 28 * 1024
_COLOR = {"firing": "Attention", "resolved": "Good"}


class TeamsConfig(TargetConfig):
    """Settings of a Teams target (the Workflows webhook URL)."""

    webhook_url: str


def _envelope(body: list[dict[str, Any]], link: str) -> dict[str, Any]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open Alertmanager", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def build_card(message: Message) -> dict[str, Any]:
    """Return the message envelope, with as many alert lines as fit in the size limit."""
    header = {
        "type": "TextBlock",
        "text": truncate(message.title, 1000),
        "weight": "Bolder",
        "size": "Medium",
        "wrap": True,
        "color": _COLOR.get(message.status, "Default"),
    }
    items = [
        {
            "type": "TextBlock",
            "text": truncate(f"**{line.status.upper()}** {line.text}", 2000),
            "wrap": True,
        }
        for line in message.lines
    ]
    shown = len(items)
    while True:
        body = [header, *items[:shown]]
        more = message.more_text(shown)
        if more:
            body.append({"type": "TextBlock", "text": more, "isSubtle": True, "wrap": True})
        envelope = _envelope(body, message.link)
        size = len(json.dumps(envelope, separators=(",", ":")).encode())
        if size <= MAX_BODY_BYTES or shown == 0:
            return envelope
        shown = max(0, shown - max(1, (shown * (size - MAX_BODY_BYTES)) // size + 1))


class TeamsTarget:
    """Post an Adaptive Card to a Teams Workflows webhook."""

    kind: ClassVar[str] = "teams"

    def __init__(self, name: str, config: TeamsConfig) -> None:
        self.name = name
        self.config = config

    async def deliver(self, context: DeliveryContext) -> None:
        """Post the card."""
        await post_json(context, self.config.webhook_url, build_card(context.message), "Teams")
