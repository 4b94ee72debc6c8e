"""HTTP steps: one request (method, URL, headers, query, JSON/form/raw body, TLS options)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from synthetic_monitor.checks.base import StepContext, StepOutcome, cert_expiry
from synthetic_monitor.conditions import Observation
from synthetic_monitor.config.model import HttpStep
from synthetic_monitor.templates import render, render_text

__all__ = ["MAX_BODY_BYTES", "HttpExecutor"]

#: Bodies are kept up to this size for conditions and extractions.
MAX_BODY_BYTES = 1024 * 1024


class HttpExecutor:
    """Send the request; observe status, timing, headers, body and certificate."""

    async def execute(self, step: HttpStep, context: StepContext) -> StepOutcome:
        """Perform the request with ``traceparent`` (and baggage) headers injected."""
        values = context.values
        url = render_text(step.url, values)
        headers = {"User-Agent": context.user_agent}
        headers.update({key: render_text(value, values) for key, value in step.headers.items()})
        headers.update(context.propagation_headers)
        params = {key: render_text(value, values) for key, value in step.query.items()}
        kwargs: dict[str, Any] = {}
        if step.json_body is not None:
            kwargs["json"] = render(step.json_body, values)
        elif step.form is not None:
            kwargs["data"] = {key: render_text(value, values) for key, value in step.form.items()}
        elif step.body is not None:
            kwargs["content"] = render_text(step.body, values).encode()
        if step.tls.server_name:
            kwargs["extensions"] = {"sni_hostname": step.tls.server_name}
        client = context.client(step.tls)
        started = time.perf_counter()
        expiry = None
        try:
            request = client.build_request(
                step.method,
                url,
                params=params or None,
                headers=headers,
                timeout=context.timeout,
                **kwargs,
            )
            response = await client.send(
                request, stream=True, follow_redirects=step.follow_redirects
            )
            try:
                # Read the certificate while the connection is still open: it is closed as
                # soon as the body has been read (no keep-alive).
                stream = response.extensions.get("network_stream")
                if stream is not None and response.url.scheme == "https":
                    expiry = cert_expiry(stream.get_extra_info("ssl_object"))
                content = bytearray()
                async for chunk in response.aiter_bytes():
                    content += chunk
                    if len(content) >= MAX_BODY_BYTES:
                        break
            finally:
                await response.aclose()
        except httpx.TimeoutException as error:
            elapsed = (time.perf_counter() - started) * 1000
            kind = type(error).__name__
            return StepOutcome(
                Observation(kind="http", response_time_ms=elapsed),
                error=f"timed out after {context.timeout:g}s ({kind})",
            )
        except httpx.HTTPError as error:
            elapsed = (time.perf_counter() - started) * 1000
            return StepOutcome(
                Observation(kind="http", response_time_ms=elapsed),
                error=f"request failed: {type(error).__name__}: {error}",
            )
        elapsed = (time.perf_counter() - started) * 1000
        body = bytes(content[:MAX_BODY_BYTES]).decode(response.encoding or "utf-8", "replace")
        observation = Observation(
            kind="http",
            response_time_ms=elapsed,
            connected=True,
            status=response.status_code,
            body=body,
            headers=dict(response.headers),
            cert_days_left=None if expiry is None else (expiry - time.time()) / 86400,
        )
        return StepOutcome(observation, cert_expiry=expiry)
