"""Discord through a channel webhook: one embed with a field per alert.

Limits: 25 fields per embed, 256 characters per field name, 1,024 per value, 4,096 per
description, 6,000 characters in all the embeds together; the rest becomes "+N more".
Reference: https://discord.com/developers/docs/resources/webhook#execute-webhook
"""

from __future__ import annotations

from typing import Any, ClassVar

from webhook_relay.targets.base import DeliveryContext, TargetConfig, post_json
from webhook_relay.templating import Message, truncate

__all__ = ["MAX_FIELDS", "MAX_TOTAL_CHARS", "DiscordConfig", "DiscordTarget", "build_embed"]

MAX_FIELDS = 25
MAX_TOTAL_CHARS = 6000
_COLORS = {"firing": 0xE01E5A, "resolved": 0x2EB67D}


class DiscordConfig(TargetConfig):
    """Settings of a Discord target."""

    webhook_url: str
    username: str | None = None


def _embed_chars(embed: dict[str, Any]) -> int:
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", ""))
    return total + sum(len(item["name"]) + len(item["value"]) for item in embed.get("fields", []))


def build_embed(message: Message) -> dict[str, Any]:
    """Return one embed within Discord's limits."""
    fields = [
        {
            "name": truncate(
                f"{line.status.upper()} {line.labels.get('alertname', '')}".strip(), 256
            ),
            "value": truncate(line.text or "-", 1024),
            "inline": False,
        }
        for line in message.lines
    ]
    shown = min(len(fields), MAX_FIELDS if len(fields) <= MAX_FIELDS else MAX_FIELDS - 1)
    while True:
        embed: dict[str, Any] = {
            "title": truncate(message.title, 256),
            "color": _COLORS.get(message.status, 0x808080),
            "fields": fields[:shown],
        }
        if message.link:
            embed["url"] = message.link
        more = message.more_text(shown)
        if more:
            embed["footer"] = {"text": truncate(more, 2048)}
        if _embed_chars(embed) <= MAX_TOTAL_CHARS or shown == 0:
            return embed
        shown -= 1


class DiscordTarget:
    """Execute a Discord webhook."""

    kind: ClassVar[str] = "discord"

    def __init__(self, name: str, config: DiscordConfig) -> None:
        self.name = name
        self.config = config

    async def deliver(self, context: DeliveryContext) -> None:
        """Post the embed (Discord answers 429 with Retry-After when rate limited)."""
        body: dict[str, Any] = {
            "embeds": [build_embed(context.message)],
            "allowed_mentions": {"parse": []},
        }
        if self.config.username:
            body["username"] = self.config.username
        await post_json(context, self.config.webhook_url, body, "Discord")
