"""E-mail over SMTP (aiosmtplib): a plain-text and an HTML part.

SMTP 4xx replies and connection failures are transient; 5xx replies are permanent.
"""

from __future__ import annotations

import html
from email.message import EmailMessage
from typing import ClassVar, Literal

import aiosmtplib

from webhook_relay.errors import PermanentDeliveryError, TransientDeliveryError
from webhook_relay.targets.base import DeliveryContext, TargetConfig
from webhook_relay.templating import Message, truncate

__all__ = ["EmailConfig", "EmailTarget", "build_email"]

MAX_LINES = 200


class EmailConfig(TargetConfig):
    """Settings of an e-mail target."""

    host: str
    port: int = 587
    sender: str
    to: list[str]
    username: str | None = None
    password: str | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"


def build_email(message: Message, sender: str, to: list[str]) -> EmailMessage:
    """Return the e-mail for a message (at most 200 alert lines, then "+N more")."""
    lines = message.lines[:MAX_LINES]
    more = message.more_text(len(lines))
    text = "\n".join(f"[{line.status}] {line.text}" for line in lines)
    if more:
        text += f"\n{more}"
    items = "".join(
        f"<li><b>{html.escape(line.status)}</b> {html.escape(line.text)}</li>" for line in lines
    )
    markup = f"<h3>{html.escape(message.title)}</h3><ul>{items}</ul>"
    if more:
        markup += f"<p>{html.escape(more)}</p>"
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = truncate(message.title.replace("\n", " "), 200)
    mail.set_content(text + "\n")
    mail.add_alternative(markup, subtype="html")
    return mail


class EmailTarget:
    """Send an e-mail."""

    kind: ClassVar[str] = "email"

    def __init__(self, name: str, config: EmailConfig) -> None:
        self.name = name
        self.config = config

    async def deliver(self, context: DeliveryContext) -> None:
        """Send the e-mail through the configured server."""
        config = self.config
        mail = build_email(context.message, config.sender, config.to)
        try:
            await aiosmtplib.send(
                mail,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                timeout=context.timeout,
            )
        except aiosmtplib.SMTPResponseException as error:
            msg = f"SMTP server answered {error.code}: {error.message}"
            if 400 <= error.code < 500:
                raise TransientDeliveryError(msg, reason="smtp_4xx") from None
            raise PermanentDeliveryError(msg, reason="smtp_5xx") from None
        except (aiosmtplib.SMTPException, OSError) as error:
            msg = f"SMTP server unreachable ({type(error).__name__}: {error})"
            raise TransientDeliveryError(msg, reason="connection") from None
