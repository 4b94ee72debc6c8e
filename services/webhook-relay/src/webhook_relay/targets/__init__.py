"""Targets: one module per kind behind one Protocol (``Target``), registered here.

An invalid target fails start-up (with the routing file's line): a relay that silently
drops a destination loses alerts, which is worse than not starting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webhook_relay.targets.apprise import AppriseConfig, AppriseTarget
from webhook_relay.targets.base import DeliveryContext, StateStore, Target, TargetConfig
from webhook_relay.targets.discord import DiscordConfig, DiscordTarget
from webhook_relay.targets.email import EmailConfig, EmailTarget
from webhook_relay.targets.log import LogConfig, LogTarget
from webhook_relay.targets.pagerduty import PagerDutyConfig, PagerDutyTarget
from webhook_relay.targets.slack import SlackConfig, SlackTarget
from webhook_relay.targets.teams import TeamsConfig, TeamsTarget
from webhook_relay.targets.webhook import WebhookConfig, WebhookTarget

__all__ = [
    "TARGET_KINDS",
    "DeliveryContext",
    "StateStore",
    "Target",
    "TargetConfig",
    "build_target",
]


def _factory(
    config_type: type[TargetConfig], target_type: Callable[[str, Any], Target]
) -> Callable[[str, dict[str, Any]], Target]:
    def build(name: str, spec: dict[str, Any]) -> Target:
        return target_type(name, config_type.model_validate(spec))

    return build


#: kind -> factory(name, raw settings); the factory raises pydantic's ValidationError.
TARGET_KINDS: dict[str, Callable[[str, dict[str, Any]], Target]] = {
    "slack": _factory(SlackConfig, SlackTarget),
    "pagerduty": _factory(PagerDutyConfig, PagerDutyTarget),
    "teams": _factory(TeamsConfig, TeamsTarget),
    "discord": _factory(DiscordConfig, DiscordTarget),
    "webhook": _factory(WebhookConfig, WebhookTarget),
    "email": _factory(EmailConfig, EmailTarget),
    "apprise": _factory(AppriseConfig, AppriseTarget),
    "log": _factory(LogConfig, LogTarget),
}


def build_target(name: str, spec: dict[str, Any]) -> Target:
    """Build a target from its routing-file settings (``type`` picks the kind)."""
    return TARGET_KINDS[spec["type"]](name, spec)
