"""HTTP calls to a deploy target's API, with every failure turned into a readable DeployError.

One place decides what an error says: the target, the method, the URL path (never the
query string or credentials: the model refuses credentials in URLs, and headers are never
printed), the status and the API's own message, cut to a few hundred characters.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from lookout_stack.deploy.model import DeployError, HttpEndpoint

__all__ = ["ApiClient", "api_message", "http_error"]

#: How much of an API's error body an error message quotes.
_MESSAGE_LIMIT = 400


def api_message(body: str) -> str:
    """Return the API's message from an error body: a JSON ``message``/``error``, or the text."""
    text = body.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("message", "error"):
                if isinstance(data.get(key), str) and data[key]:
                    text = data[key]
                    break
    text = " ".join(text.split())
    return text[:_MESSAGE_LIMIT] + ("..." if len(text) > _MESSAGE_LIMIT else "") or "(empty body)"


def http_error(target: str, method: str, path: str, status: int, body: str) -> DeployError:
    """Return the DeployError for an HTTP error answer."""
    return DeployError(f"{target}: {method} {path} answered {status}: {api_message(body)}")


class ApiClient:
    """An httpx client for one endpoint: base URL, tenant and auth headers, TLS, timeout."""

    def __init__(self, target: str, endpoint: HttpEndpoint, where: str) -> None:
        self.target = target
        self._endpoint = endpoint
        self._where = where
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        # Headers are resolved on first use, so a plan that never reaches this target does
        # not need its secrets, and a missing one fails naming the variable or file.
        if self._client is None:
            self._client = httpx.Client(
                base_url=self._endpoint.url,
                headers=self._endpoint.headers(self._where),
                verify=self._endpoint.verify_tls,
                timeout=self._endpoint.timeout_seconds,
            )
        return self._client

    def request(
        self,
        method: str,
        path: str,
        *,
        content: str | None = None,
        content_type: str | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send a request; raise DeployError unless the status is 2xx or in ``allow``."""
        headers: dict[str, Any] = {"Content-Type": content_type} if content_type else {}
        try:
            response = self._http().request(method, path, content=content, headers=headers)
        except httpx.HTTPError as error:
            msg = (
                f"{self.target}: {method} {path} failed: {type(error).__name__}"
                f" ({self._endpoint.url} unreachable or too slow?)"
            )
            raise DeployError(msg) from None
        if response.is_success or response.status_code in allow:
            return response
        raise http_error(self.target, method, path, response.status_code, response.text)

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None
