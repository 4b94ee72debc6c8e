"""One HTTP client for a check run: bounded concurrency, a timeout per request, errors as text.

Credentials live only in the client's default headers: they never appear in a message, a
report or a log line (httpx's exceptions do not carry request headers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from lookout_stack.check.errors import QueryError

__all__ = ["Http"]


class Http:
    """An httpx.AsyncClient with a semaphore: at most ``concurrency`` requests in flight."""

    def __init__(
        self,
        concurrency: int = 8,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        auth: httpx.BasicAuth | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers=dict(headers or {}),
            auth=auth,
            follow_redirects=False,
        )
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self.timeout = timeout

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request; a transport failure raises QueryError naming the URL (no query)."""
        async with self._slots:
            try:
                return await self._client.request(
                    method, url, params=params, data=data, json=json, headers=headers
                )
            except httpx.TimeoutException:
                msg = f"no answer from {_where(url)} within {self.timeout:g} s"
                raise QueryError(msg) from None
            except httpx.HTTPError as exc:
                msg = f"cannot reach {_where(url)}: {type(exc).__name__}: {exc}"
                raise QueryError(msg) from None

    async def aclose(self) -> None:
        """Close the connections."""
        await self._client.aclose()


def _where(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}{f':{parsed.port}' if parsed.port else ''}{parsed.path}"
