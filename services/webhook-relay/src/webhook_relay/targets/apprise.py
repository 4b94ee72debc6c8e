"""Apprise URLs for the long tail (Telegram, Matrix, Opsgenie, ntfy, ...).

Apprise reports only success or failure, so every failure is treated as transient.
Reference: https://github.com/caronc/apprise/wiki
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from pydantic import field_validator

from webhook_relay.errors import TransientDeliveryError
from webhook_relay.targets.base import DeliveryContext, TargetConfig

__all__ = ["AppriseConfig", "AppriseTarget"]

MAX_LINES = 50


class AppriseConfig(TargetConfig):
    """Settings of an apprise target: one or more apprise URLs."""

    urls: list[str]

    @field_validator("urls")
    @classmethod
    def _known_schemes(cls, urls: list[str]) -> list[str]:
        """Refuse URLs apprise cannot parse, at start-up."""
        import apprise  # noqa: PLC0415 (heavy import, only when an apprise target exists)

        for url in urls:
            if apprise.Apprise.instantiate(url) is None:
                msg = f"apprise does not understand the URL scheme of {url.split('://')[0]!r}"
                raise ValueError(msg)
        return urls


class AppriseTarget:
    """Notify through apprise."""

    kind: ClassVar[str] = "apprise"

    def __init__(self, name: str, config: AppriseConfig) -> None:
        self.name = name
        self.config = config

    async def deliver(self, context: DeliveryContext) -> None:
        """Send through every URL; any failure is retried."""
        import apprise  # noqa: PLC0415

        notifier = apprise.Apprise()
        for url in self.config.urls:
            notifier.add(url)
        lines = context.message.lines[:MAX_LINES]
        body = "\n".join(f"[{line.status}] {line.text}" for line in lines)
        more = context.message.more_text(len(lines))
        if more:
            body += f"\n{more}"
        ok = await asyncio.to_thread(notifier.notify, body=body, title=context.message.title)
        if not ok:
            msg = "apprise reported a failed notification"
            raise TransientDeliveryError(msg, reason="apprise")
