"""Fault injection for demos and chaos tests: latency, errors and payment failures per route.

Off by default. The API is there only when ``DEMO_FAULT_TOKEN`` is set, and every call must
carry that token in ``X-Fault-Token``. Rules live in the process (with several workers, set
them on each, or use one worker per container as compose does); every change is logged as a
security event.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field

from lookout_demo.web.errors import ApiError

__all__ = ["FaultRule", "FaultSet", "InjectedCrashError", "faults_router", "inject_faults"]

security_log = logging.getLogger("lookout_demo.security")


class FaultRule(BaseModel):
    """What to inject on one route template (or ``*`` for every route)."""

    route: str = Field(default="*", min_length=1, max_length=200)
    latency_ms: float = Field(default=0.0, ge=0.0, le=60_000.0)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    payment_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    #: Share of requests that raise an exception no handler catches (the error tracker's
    #: demo: it reaches the global exception handler, like a real bug would).
    exception_rate: float = Field(default=0.0, ge=0.0, le=1.0)


class InjectedCrashError(RuntimeError):
    """An unhandled error raised on purpose by fault injection."""


class FaultRules(BaseModel):
    """The whole rule set, as the API reads and writes it."""

    rules: list[FaultRule] = Field(default_factory=list, max_length=100)


class FaultSet:
    """The rules in force in this process."""

    def __init__(self) -> None:
        self.rules: dict[str, FaultRule] = {}

    def replace(self, rules: list[FaultRule]) -> None:
        """Put these rules in force instead of the current ones."""
        self.rules = {rule.route: rule for rule in rules}

    def for_route(self, route: str) -> FaultRule | None:
        """Return the rule for a route template: its own, else the ``*`` rule, else None."""
        return self.rules.get(route) or self.rules.get("*")


def _fault_set(request: Request) -> FaultSet:
    faults: FaultSet = request.app.state.faults
    return faults


async def inject_faults(request: Request) -> None:
    """Delay or fail this request as the rule for its route says (a route dependency)."""
    faults = _fault_set(request)
    if not faults.rules:
        return
    route = getattr(request.scope.get("route"), "path", "*")
    rule = faults.for_route(route)
    if rule is None:
        return
    if rule.latency_ms:
        await asyncio.sleep(rule.latency_ms / 1000)
    if rule.error_rate and random.random() < rule.error_rate:
        raise ApiError(500, "injected_fault", f"fault injected on {route} (error_rate)")
    if rule.exception_rate and random.random() < rule.exception_rate:
        msg = f"unhandled fault injected on {route} (exception_rate)"
        raise InjectedCrashError(msg)


async def _failing_task(message: str) -> None:
    """Fail after one loop turn, as a background job with a bug would."""
    await asyncio.sleep(0)
    raise InjectedCrashError(message)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _audit(request: Request, action: str, details: dict[str, object]) -> None:
    """Write a fault-API call to the audit log (who: the calling address)."""
    await request.app.state.audit.append(
        "fault", action, actor=f"client:{_client(request)}", details=details
    )


async def _authorise(request: Request, token: str | None) -> None:
    configured = request.app.state.fault_token
    if configured is None:
        raise ApiError(
            404,
            "not_found",
            "fault injection is disabled: set DEMO_FAULT_TOKEN to enable it",
        )
    if token is None or not hmac.compare_digest(token.encode(), configured.encode()):
        security_log.warning(
            "fault API refused: bad or missing token",
            extra={"security": True, "event": "fault_api_denied"},
        )
        await _audit(request, "fault_api_denied", {"path": request.url.path})
        raise ApiError(401, "unauthorized", "X-Fault-Token is missing or wrong")


FaultToken = Annotated[str | None, Header(alias="X-Fault-Token")]


def faults_router() -> APIRouter:
    """Build the /admin/faults routes."""
    router = APIRouter(prefix="/admin/faults", tags=["admin"])

    @router.get("")
    async def list_faults(request: Request, token: FaultToken = None) -> FaultRules:
        """Show the rules in force."""
        await _authorise(request, token)
        return FaultRules(rules=list(_fault_set(request).rules.values()))

    @router.put("")
    async def set_faults(
        request: Request, body: FaultRules, token: FaultToken = None
    ) -> FaultRules:
        """Replace the rules in force."""
        await _authorise(request, token)
        _fault_set(request).replace(body.rules)
        await _audit(request, "faults_changed", {"rules": [r.model_dump() for r in body.rules]})
        security_log.warning(
            "fault injection changed",
            extra={
                "security": True,
                "event": "faults_changed",
                "rules": [rule.model_dump() for rule in body.rules],
            },
        )
        return FaultRules(rules=list(_fault_set(request).rules.values()))

    @router.delete("", status_code=204)
    async def clear_faults(request: Request, token: FaultToken = None) -> None:
        """Remove every rule."""
        await _authorise(request, token)
        _fault_set(request).replace([])
        await _audit(request, "faults_cleared", {})
        security_log.warning(
            "fault injection cleared", extra={"security": True, "event": "faults_cleared"}
        )

    @router.post("/background-error", status_code=202)
    async def background_error(request: Request, token: FaultToken = None) -> dict[str, str]:
        """Start a background task that fails (its error must be logged and reported)."""
        await _authorise(request, token)
        security_log.warning(
            "fault injected: failing background task",
            extra={"security": True, "event": "faults_background_error"},
        )
        await _audit(request, "faults_background_error", {})
        request.app.state.tasks.spawn(
            _failing_task("injected failure in a background task"), name="injected-fault"
        )
        return {"status": "started"}

    return router


FaultDependency = Depends(inject_faults)
