"""Slack: Block Kit through an incoming webhook, or chat.postMessage with a bot token.

With a bot token the relay remembers each group's message (channel and ts, in the store):
when the group resolves it updates that message (``resolve: update``), replies in its
thread (``resolve: thread``) or both. An incoming webhook can only post new messages.
Limits: 50 blocks per message, 3,000 characters per section, 150 per header.
References: https://api.slack.com/reference/block-kit/blocks,
https://api.slack.com/methods/chat.postMessage, https://api.slack.com/methods/chat.update
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from webhook_relay.errors import PermanentDeliveryError, TransientDeliveryError
from webhook_relay.targets.base import DeliveryContext, TargetConfig, post_json
from webhook_relay.templating import Message, truncate

__all__ = ["MAX_BLOCKS", "MAX_SECTION_CHARS", "SlackConfig", "SlackTarget", "build_blocks"]

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
_EMOJI = {"firing": ":red_circle:", "resolved": ":large_green_circle:"}
_RATE_LIMIT_ERRORS = {"ratelimited", "rate_limited", "service_unavailable", "request_timeout"}


class SlackConfig(TargetConfig):
    """Settings of a Slack target: ``webhook_url``, or ``token`` with ``channel``."""

    webhook_url: str | None = None
    token: str | None = None
    channel: str | None = None
    api_url: str = "https://slack.com/api"
    resolve: Literal["update", "thread", "both"] = "both"

    @model_validator(mode="after")
    def _one_mode(self) -> SlackConfig:
        """Require exactly one way to post."""
        if (self.webhook_url is None) == (self.token is None):
            msg = "set either webhook_url (incoming webhook) or token with channel"
            raise ValueError(msg)
        if self.token is not None and not self.channel:
            msg = "token needs channel (the channel id to post to)"
            raise ValueError(msg)
        return self


def build_blocks(message: Message) -> list[dict[str, Any]]:
    """Return the Block Kit blocks: a header, one section per alert, "+N more" if cut."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(message.title, MAX_HEADER_CHARS)},
        }
    ]
    fits = len(message.lines) + 1 <= MAX_BLOCKS and message.truncated_alerts == 0
    # Otherwise keep two blocks free: the header and the "+N more" context block.
    visible = message.lines if fits else message.lines[: MAX_BLOCKS - 2]
    shown = 0
    for line in visible:
        text = f"{_EMOJI.get(line.status, '')} {line.text}".strip()
        if line.url:
            text += f" <{line.url}|source>"
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_CHARS)},
            }
        )
        shown += 1
    more = message.more_text(shown)
    if more:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": truncate(more, MAX_SECTION_CHARS)}],
            }
        )
    return blocks


class SlackTarget:
    """Post to Slack."""

    kind: ClassVar[str] = "slack"

    def __init__(self, name: str, config: SlackConfig) -> None:
        self.name = name
        self.config = config

    async def deliver(self, context: DeliveryContext) -> None:
        """Post the message, or update/thread the group's earlier message when resolved."""
        message = context.message
        blocks = build_blocks(message)
        fallback = truncate(message.title, MAX_SECTION_CHARS)
        if self.config.webhook_url is not None:
            await post_json(
                context,
                self.config.webhook_url,
                {"text": fallback, "blocks": blocks},
                "Slack webhook",
            )
            return
        key = context.notification.groupKey
        previous = await context.state.get(self.name, key)
        if message.status == "resolved" and previous is not None:
            if self.config.resolve in {"update", "both"}:
                await self._call(
                    context,
                    "chat.update",
                    {
                        "channel": previous["channel"],
                        "ts": previous["ts"],
                        "text": fallback,
                        "blocks": blocks,
                    },
                )
            if self.config.resolve in {"thread", "both"}:
                await self._call(
                    context,
                    "chat.postMessage",
                    {
                        "channel": previous["channel"],
                        "thread_ts": previous["ts"],
                        "text": fallback,
                        "blocks": blocks,
                    },
                )
            return
        if message.status == "firing" and previous is not None:
            # The group changed while firing: refresh the one message people are watching.
            await self._call(
                context,
                "chat.update",
                {
                    "channel": previous["channel"],
                    "ts": previous["ts"],
                    "text": fallback,
                    "blocks": blocks,
                },
            )
            return
        answer = await self._call(
            context,
            "chat.postMessage",
            {"channel": self.config.channel, "text": fallback, "blocks": blocks},
        )
        if message.status == "firing":
            await context.state.put(
                self.name,
                key,
                {"channel": answer.get("channel", self.config.channel), "ts": answer["ts"]},
            )

    async def _call(
        self, context: DeliveryContext, method: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Call a Web API method; Slack answers 200 with ok=false on errors."""
        response = await post_json(
            context,
            f"{self.config.api_url.rstrip('/')}/{method}",
            body,
            f"Slack {method}",
            headers={"Authorization": f"Bearer {self.config.token}"},
        )
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            msg = f"Slack {method} answered non-JSON"
            raise TransientDeliveryError(msg, reason="http_5xx") from None
        if not answer.get("ok"):
            error = str(answer.get("error", "unknown"))
            msg = f"Slack {method} failed: {error}"
            if error in _RATE_LIMIT_ERRORS:
                raise TransientDeliveryError(msg, reason="rate_limited")
            raise PermanentDeliveryError(msg, reason="http_4xx")
        return answer
