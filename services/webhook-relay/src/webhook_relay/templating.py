"""Sandboxed Jinja2 templates for messages, with defaults per target and limits helpers.

Templates see the notification's fields (``status``, ``receiver``, ``groupLabels``,
``commonLabels``, ``commonAnnotations``, ``externalURL``, ``alerts``, ...) and, for the
per-alert template, ``alert``. The sandbox refuses attribute access to Python internals,
so a routing file cannot run code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from webhook_relay.errors import PermanentDeliveryError
from webhook_relay.payload import Alert, Notification

__all__ = [
    "DEFAULT_TEMPLATES",
    "Message",
    "MessageLine",
    "Templates",
    "compile_template",
    "render_message",
    "truncate",
]

#: Defaults for every target; a rule overrides any of them per target.
DEFAULT_TEMPLATES: dict[str, str] = {
    "title": (
        "[{{ status | upper }}{% if status == 'firing' %}:{{ firing | length }}{% endif %}] "
        "{{ groupLabels.alertname | default(commonLabels.alertname | default(receiver)) }}"
    ),
    "alert": (
        "{{ alert.annotations.summary | default(alert.labels.alertname | default('alert')) }}"
        "{% if alert.annotations.description %} - {{ alert.annotations.description }}{% endif %}"
    ),
}

_LENIENT_ENV = ImmutableSandboxedEnvironment(autoescape=False)


@functools.lru_cache(maxsize=256)
def compile_template(source: str) -> Any:
    """Compile a template once, raising jinja2's TemplateSyntaxError (with its line) if invalid."""
    return _LENIENT_ENV.from_string(source)


def truncate(text: str, limit: int, marker: str = "…") -> str:
    """Return ``text`` cut to at most ``limit`` characters, marked when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


@dataclass(frozen=True)
class MessageLine:
    """One alert's rendered line."""

    text: str
    status: str
    severity: str
    url: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Message:
    """A rendered notification: what every target formats in its own way."""

    title: str
    lines: list[MessageLine]
    status: str
    severity: str
    link: str
    truncated_alerts: int

    def more_text(self, shown: int) -> str:
        """Return the "+N more" summary for the lines (and truncated alerts) not shown."""
        hidden = len(self.lines) - shown + self.truncated_alerts
        if hidden <= 0:
            return ""
        where = f" in Alertmanager: {self.link}" if self.link else ""
        return f"+{hidden} more{where}"


@dataclass(frozen=True)
class Templates:
    """The title and per-alert templates of one target in one rule."""

    title: str = DEFAULT_TEMPLATES["title"]
    alert: str = DEFAULT_TEMPLATES["alert"]


def _context(notification: Notification) -> dict[str, Any]:
    data = notification.model_dump(mode="json")
    data["firing"] = [alert for alert in data["alerts"] if alert["status"] == "firing"]
    data["resolved"] = [alert for alert in data["alerts"] if alert["status"] == "resolved"]
    return data


def _render(source: str, context: dict[str, Any], what: str) -> str:
    try:
        return str(compile_template(source).render(context)).strip()
    except TemplateError as error:
        msg = f"the {what} template failed: {error}"
        raise PermanentDeliveryError(msg, reason="template") from None


def _alert_link(alert: Alert, notification: Notification) -> str:
    return alert.generatorURL or notification.externalURL


def render_message(notification: Notification, templates: Templates) -> Message:
    """Render the title and one line per alert (firing first); template errors are permanent."""
    context = _context(notification)
    title = _render(templates.title, context, "title")
    ordered = sorted(
        zip(notification.alerts, context["alerts"], strict=True),
        key=lambda pair: pair[0].status != "firing",
    )
    lines = []
    for alert, alert_data in ordered:
        text = _render(templates.alert, {**context, "alert": alert_data}, "alert")
        lines.append(
            MessageLine(
                text=text,
                status=alert.status,
                severity=alert.labels.get("severity", ""),
                url=_alert_link(alert, notification),
                labels=dict(alert.labels),
            )
        )
    return Message(
        title=title,
        lines=lines,
        status=notification.status,
        severity=notification.severity(),
        link=notification.externalURL,
        truncated_alerts=notification.truncatedAlerts,
    )
