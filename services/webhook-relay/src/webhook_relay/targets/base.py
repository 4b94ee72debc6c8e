"""The one small interface every target implements, and helpers they share."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from webhook_relay.errors import PermanentDeliveryError, TransientDeliveryError
from webhook_relay.payload import Notification
from webhook_relay.templating import Message

__all__ = [
    "DeliveryContext",
    "StateStore",
    "Target",
    "TargetConfig",
    "check_response",
    "parse_retry_after",
    "post_json",
]


class TargetConfig(BaseModel):
    """Base of every target's settings: unknown keys are errors (typos fail start-up)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


class StateStore(Protocol):
    """Per-target state kept in the durable store (Slack's message ids, for instance)."""

    async def get(self, target: str, key: str) -> dict[str, Any] | None:
        """Return the state saved under (target, key), if any."""
        ...

    async def put(self, target: str, key: str, value: dict[str, Any]) -> None:
        """Save the state under (target, key)."""
        ...


@dataclass
class DeliveryContext:
    """Everything a target needs for one delivery."""

    delivery_id: int
    notification: Notification
    message: Message
    http: httpx.AsyncClient
    state: StateStore
    timeout: float
    headers: dict[str, str] = field(default_factory=dict)


class Target(Protocol):
    """A destination: one module per kind, registered in ``webhook_relay.targets``.

    ``deliver`` returns when the target accepted the message; it raises
    TransientDeliveryError (retry later, maybe after ``retry_after``) or
    PermanentDeliveryError (dead letter at once).
    """

    kind: ClassVar[str]
    name: str

    async def deliver(self, context: DeliveryContext) -> None:
        """Send one notification to the target."""
        ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def check_response(response: httpx.Response, what: str) -> None:
    """Raise the right delivery error for a non-2xx answer."""
    status = response.status_code
    if 200 <= status < 300:
        return
    snippet = response.text[:200].replace("\n", " ")
    message = f"{what} answered HTTP {status}: {snippet}"
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise TransientDeliveryError(message, reason="rate_limited", retry_after=retry_after)
    if status == 408 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise TransientDeliveryError(message, reason="http_5xx", retry_after=retry_after)
    raise PermanentDeliveryError(message, reason="http_4xx")


async def send(call: Callable[[], Awaitable[httpx.Response]], what: str) -> httpx.Response:
    """Run one HTTP call, mapping network errors and timeouts to transient errors."""
    try:
        return await call()
    except httpx.TimeoutException as error:
        msg = f"{what} timed out ({type(error).__name__})"
        raise TransientDeliveryError(msg, reason="timeout") from None
    except httpx.HTTPError as error:
        msg = f"{what} unreachable ({type(error).__name__}: {error})"
        raise TransientDeliveryError(msg, reason="connection") from None


async def post_json(
    context: DeliveryContext,
    url: str,
    body: Any,
    what: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a JSON body, raising the right delivery error unless the answer is 2xx."""
    response = await send(
        lambda: context.http.post(
            url,
            json=body,
            headers={**context.headers, **(headers or {})},
            timeout=context.timeout,
        ),
        what,
    )
    check_response(response, what)
    return response
