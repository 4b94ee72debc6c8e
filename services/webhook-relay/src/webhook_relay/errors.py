"""Every exception the relay raises on purpose, in one module."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "PayloadError",
    "PermanentDeliveryError",
    "SettingsError",
    "StoreUnavailableError",
    "TransientDeliveryError",
]


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class ConfigError(ValueError):
    """The routing file is invalid; the message names the file, the line and the field."""


class PayloadError(ValueError):
    """An inbound webhook payload is malformed; the message says what is wrong and where."""


class StoreUnavailableError(RuntimeError):
    """The durable store could not commit right now (busy, down): a transient failure."""


class DeliveryError(Exception):
    """A delivery to a target failed; ``reason`` is a bounded label for metrics."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TransientDeliveryError(DeliveryError):
    """A delivery failed in a way that may pass on a later attempt (5xx, 429, network)."""

    def __init__(self, message: str, *, reason: str, retry_after: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """A delivery the target rejected for good (4xx other than 408/429, bad template)."""
