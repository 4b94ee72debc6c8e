"""TLS steps: complete a handshake and read the peer certificate's expiry."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time

from synthetic_monitor.checks.base import StepContext, StepOutcome, cert_expiry, ssl_context
from synthetic_monitor.conditions import Observation
from synthetic_monitor.config.model import TlsStep
from synthetic_monitor.templates import render_text

__all__ = ["TlsExecutor"]


class TlsExecutor:
    """Handshake with host:port (SNI: ``tls.server_name`` or the host)."""

    async def execute(self, step: TlsStep, context: StepContext) -> StepOutcome:
        """Handshake; failures (refused, untrusted, expired) are observations with an error."""
        host = render_text(step.host, context.values)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(context.timeout):
                _, writer = await asyncio.open_connection(
                    host,
                    step.port,
                    ssl=ssl_context(step.tls),
                    server_hostname=step.tls.server_name or host,
                )
        except TimeoutError:
            elapsed = (time.perf_counter() - started) * 1000
            return StepOutcome(
                Observation(kind="tls", response_time_ms=elapsed),
                error=f"TLS handshake with {host}:{step.port} timed out after {context.timeout:g}s",
            )
        except ssl.SSLError as error:
            elapsed = (time.perf_counter() - started) * 1000
            reason = getattr(error, "verify_message", None) or error.reason or str(error)
            return StepOutcome(
                Observation(kind="tls", response_time_ms=elapsed),
                error=f"TLS handshake with {host}:{step.port} failed: {reason}",
            )
        except OSError as error:
            elapsed = (time.perf_counter() - started) * 1000
            return StepOutcome(
                Observation(kind="tls", response_time_ms=elapsed),
                error=f"connect to {host}:{step.port} failed: {error.strerror or error}",
            )
        elapsed = (time.perf_counter() - started) * 1000
        expiry = cert_expiry(writer.get_extra_info("ssl_object"))
        writer.close()
        # An unclean TLS close by the peer is not the probe's failure.
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        observation = Observation(
            kind="tls",
            response_time_ms=elapsed,
            connected=True,
            cert_days_left=None if expiry is None else (expiry - time.time()) / 86400,
        )
        return StepOutcome(observation, cert_expiry=expiry)
