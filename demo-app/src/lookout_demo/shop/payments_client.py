"""The shop's client for the payments service (httpx, traced, with a timeout)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from lookout_telemetry.context import request_id_var

__all__ = ["Authorization", "PaymentsClient", "PaymentsUnavailableError"]


async def _forward_request_id(request: httpx.Request) -> None:
    """Send the current request id on, so both services' logs share it."""
    request_id = request_id_var.get()
    if request_id is not None:
        request.headers.setdefault("x-request-id", request_id)


class PaymentsUnavailableError(Exception):
    """The payments service did not answer, or answered with a server error."""


@dataclass(frozen=True)
class Authorization:
    """The payments service's answer to an authorisation request."""

    id: str
    status: str
    decline_reason: str | None


class PaymentsClient:
    """Authorise and capture payments over HTTP."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            event_hooks={"request": [_forward_request_id]},
        )
        if tracer_provider is not None:
            HTTPXClientInstrumentor.instrument_client(self.http, tracer_provider=tracer_provider)

    async def _post(self, path: str, json: dict[str, object] | None = None) -> httpx.Response:
        try:
            response = await self.http.post(path, json=json)
        except httpx.HTTPError as exc:
            msg = f"payments service unreachable ({type(exc).__name__}: {exc})"
            raise PaymentsUnavailableError(msg) from exc
        if response.status_code >= 500:
            msg = f"payments service answered {response.status_code} on {path}"
            raise PaymentsUnavailableError(msg)
        response.raise_for_status()
        return response

    async def authorize(
        self, *, order_id: str, amount_cents: int, method: str, card_number: str | None
    ) -> Authorization:
        """Ask for an authorisation; a decline is an answer, not an exception."""
        body: dict[str, object] = {
            "order_id": order_id,
            "amount_cents": amount_cents,
            "currency": "USD",
            "method": method,
        }
        if card_number is not None:
            body["card_number"] = card_number
        data = (await self._post("/v1/authorizations", body)).json()
        return Authorization(
            id=data["id"], status=data["status"], decline_reason=data.get("decline_reason")
        )

    async def capture(self, payment_id: str) -> None:
        """Capture an authorised payment."""
        await self._post(f"/v1/authorizations/{payment_id}/capture")

    async def ping(self) -> None:
        """Raise unless the payments service reports itself live."""
        response = await self.http.get("/health/live")
        response.raise_for_status()

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()
