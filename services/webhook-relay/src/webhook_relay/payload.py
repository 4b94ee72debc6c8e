"""Alertmanager's webhook payload (version 4), its validation and its idempotency key.

Reference: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
Unknown keys (``notification_reason``, ``routeLabels`` in newer releases) are accepted and
kept, so a newer Alertmanager never gets a 400 from this relay.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook_relay.errors import PayloadError

__all__ = ["Alert", "Notification", "idempotency_key", "parse_notification", "serialize"]

Status = Literal["firing", "resolved"]


class Alert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(extra="allow", frozen=True)

    status: Status
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: Annotated[str, Field(max_length=128)] = ""

    def key(self) -> str:
        """Return the fingerprint, or a hash of the labels when Alertmanager sent none."""
        if self.fingerprint:
            return self.fingerprint
        canonical = json.dumps(self.labels, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Notification(BaseModel):
    """One Alertmanager notification: a group of alerts for one receiver."""

    model_config = ConfigDict(extra="allow", frozen=True)

    version: Literal["4"]
    groupKey: Annotated[str, Field(min_length=1, max_length=4096)]
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    status: Status
    receiver: Annotated[str, Field(min_length=1, max_length=256)]
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: Annotated[list[Alert], Field(min_length=1)]

    @property
    def firing(self) -> list[Alert]:
        """Return the alerts that are firing."""
        return [alert for alert in self.alerts if alert.status == "firing"]

    @property
    def resolved(self) -> list[Alert]:
        """Return the alerts that are resolved."""
        return [alert for alert in self.alerts if alert.status == "resolved"]

    def severity(self) -> str:
        """Return the group's severity label (common label first, then the first alert's)."""
        return self.commonLabels.get("severity") or self.alerts[0].labels.get("severity", "")


def _location(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``alerts[0].labels``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "payload"


def _encodable(data: Any) -> bool:
    """Return whether every string in ``data`` encodes to UTF-8 (no lone surrogates)."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_notification(body: bytes) -> Notification:
    """Parse and validate a webhook body, or raise PayloadError saying what is wrong."""
    try:
        data: Any = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        msg = f"the body is not UTF-8: {error.reason} at byte {error.start}"
        raise PayloadError(msg) from None
    except json.JSONDecodeError as error:
        msg = f"the body is not valid JSON: {error}"
        raise PayloadError(msg) from None
    except RecursionError:
        msg = "the body is nested too deeply to be an Alertmanager payload"
        raise PayloadError(msg) from None
    if (b"\\ud" in body or b"\\uD" in body) and not _encodable(data):
        msg = "the body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid text"
        raise PayloadError(msg)
    if not isinstance(data, dict):
        kind = type(data).__name__
        msg = f"the body must be a JSON object (Alertmanager's webhook payload), not {kind}"
        raise PayloadError(msg)
    try:
        notification = Notification.model_validate(data)
    except ValidationError as error:
        problems = [f"{_location(item['loc'])}: {item['msg']}" for item in error.errors()[:10]]
        more = error.error_count() - len(problems)
        suffix = f" (and {more} more)" if more > 0 else ""
        raise PayloadError(
            "invalid Alertmanager payload: " + "; ".join(problems) + suffix
        ) from None
    except RecursionError:
        msg = "the body is nested too deeply to be an Alertmanager payload"
        raise PayloadError(msg) from None
    for name, value in (("receiver", notification.receiver), ("groupKey", notification.groupKey)):
        if "\x00" in value:
            msg = f"{name}: must not contain NUL characters"
            raise PayloadError(msg)
    return notification


def serialize(notification: Notification) -> str:
    """Return the notification as the JSON text the store keeps, or raise PayloadError."""
    try:
        text = notification.model_dump_json()
        text.encode("utf-8")
    except (UnicodeEncodeError, ValueError) as error:
        msg = f"the payload holds text that is not valid Unicode (a lone surrogate?): {error}"
        raise PayloadError(msg) from None
    return text


def idempotency_key(notification: Notification) -> str:
    """Return the key that identifies a notification across Alertmanager HA peers and retries.

    It hashes groupKey, the group status and each alert's fingerprint with its own status:
    the same group sent by two peers yields one key, while a later notification in which one
    alert has resolved (same fingerprints, group still firing) yields another.
    """
    parts = sorted(f"{alert.key()}:{alert.status}" for alert in notification.alerts)
    material = "\x00".join([notification.groupKey, notification.status, *parts])
    return hashlib.sha256(material.encode()).hexdigest()
