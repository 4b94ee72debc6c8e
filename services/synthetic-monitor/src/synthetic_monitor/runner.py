"""Run a journey: attempts of ordered steps, extractions, secrets, cleanup, one trace per run.

Each run is one trace: a root span ``journey <name>`` and a span per step (CLIENT for HTTP).
Every HTTP request carries W3C ``traceparent`` (the step span) and ``baggage`` with
``synthetic=true`` and the journey name, so the target's server spans join the journey's
trace and dashboards can include or exclude synthetic traffic; the spans carry the same
marking as attributes (``synthetic``, ``synthetic.journey``).

An attempt stops at the first failing step; the remaining steps are reported as skipped.
Cleanup steps run after every attempt, whatever happened, with the values extracted so far;
a cleanup step whose input was never extracted is skipped with the reason. A failed cleanup
is reported (and measured) but does not fail the journey. A journey with ``retries: N`` is
attempted up to N+1 times; a run that passed only after a retry is ``flaky``.

The journey's ``timeout`` bounds each attempt (a step's own ``timeout`` may be shorter);
cleanup gets the same budget again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage, context, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lookout_telemetry.errortracking import remember_context
from synthetic_monitor import __version__
from synthetic_monitor.checks import EXECUTORS, StepContext, StepOutcome
from synthetic_monitor.config.model import HttpStep, Journey, Step
from synthetic_monitor.errors import ConditionError, TemplateError
from synthetic_monitor.jsonpath import MISSING, parse_path
from synthetic_monitor.results import RunResult, StepResult
from synthetic_monitor.secrets import SecretError, redact, resolve_secrets

__all__ = ["JourneyRunner", "RunObserver"]

log = logging.getLogger("synthetic_monitor.run")

_PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
_USER_AGENT = f"lookout-synthetic-monitor/{__version__}"


class RunObserver:
    """Told about each finished step and run (metrics, history); the default does nothing."""

    def step_finished(self, journey: Journey, step: StepResult, trace_id: str) -> None:
        """Handle one finished step."""

    def run_finished(self, journey: Journey, result: RunResult) -> None:
        """Handle one finished run."""


class _AttemptTimeout(Exception):
    pass


def _extract(step: Step, outcome: StepOutcome, values: dict[str, object]) -> str | None:
    """Store the step's extractions in ``values``; return an error for the first that fails."""
    seen = outcome.observation
    for name, rule in step.extract.items():
        value: object = MISSING
        if rule.json_path is not None:
            value = parse_path(rule.json_path.removeprefix("[BODY]")).get(seen.json_body())
            where = f"JSON path {rule.json_path}"
        elif rule.header is not None:
            wanted = rule.header.lower()
            value = next((v for k, v in seen.headers.items() if k.lower() == wanted), MISSING)
            where = f"header {rule.header}"
        else:
            match = re.search(rule.regex or "", seen.body or "")
            if match is not None:
                groups = match.groupdict()
                value = groups.get("value") or (
                    match.group(1) if match.groups() else match.group(0)
                )
            where = f"regex {rule.regex}"
        if value is MISSING or value is None:
            return f"could not extract {name!r}: nothing at {where}"
        values[name] = value
    return None


class JourneyRunner:
    """Runs journeys; owns a tracer; reports to an observer. Safe to share between tasks."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        observer: RunObserver | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Trace through ``tracer_provider`` (a private SDK one when None, so ids exist)."""
        provider = tracer_provider if tracer_provider is not None else TracerProvider()
        self.tracer = provider.get_tracer("synthetic_monitor", __version__)
        self.observer = observer or RunObserver()
        self.environ = environ

    async def run(self, journey: Journey) -> RunResult:
        """Run ``journey`` once (with its retries); never raises for target failures."""
        started_at, started = time.time(), time.perf_counter()
        attributes: dict[str, str | bool] = {"synthetic": True, "synthetic.journey": journey.name}
        ctx = baggage.set_baggage("synthetic", "true")
        ctx = baggage.set_baggage("synthetic.journey", journey.name, ctx)
        token = context.attach(ctx)
        try:
            with self.tracer.start_as_current_span(
                f"journey {journey.name}", kind=SpanKind.INTERNAL, attributes=attributes
            ) as root:
                trace_id = format(root.get_span_context().trace_id, "032x")
                try:
                    result = await self._run(journey, root, trace_id, started_at, started)
                except Exception as error:  # a bug, not a target failure: keep the run's ids
                    remember_context(error, root)
                    raise
                root.set_attribute("synthetic.attempts", result.attempts)
                root.set_attribute("synthetic.outcome", result.outcome)
                if not result.success:
                    root.set_status(Status(StatusCode.ERROR, result.failure_reason()))
                self._log_run(journey, result)
        finally:
            context.detach(token)
        self.observer.run_finished(journey, result)
        return result

    async def _run(
        self, journey: Journey, root: Span, trace_id: str, started_at: float, started: float
    ) -> RunResult:
        def finish(
            success: bool,
            attempts: int,
            first: bool,
            steps: list[StepResult],
            error: str | None = None,
        ) -> RunResult:
            return RunResult(
                journey=journey.name,
                kind=journey.kind,
                success=success,
                attempts=attempts,
                first_attempt_success=first,
                started_at=started_at,
                duration_seconds=time.perf_counter() - started,
                trace_id=trace_id,
                steps=steps,
                labels=dict(journey.labels),
                error=error,
            )

        try:
            secrets = resolve_secrets(journey.secrets, self.environ)
        except SecretError as error:
            root.record_exception(error)
            return finish(False, 1, False, [], str(error))
        first_success = False
        steps: list[StepResult] = []
        attempts = journey.retries + 1
        for attempt in range(1, attempts + 1):
            values: dict[str, object] = dict(journey.variables)
            values.update({f"secrets.{name}": value for name, value in secrets.items()})
            # One context per attempt: cleanup (a logout) sends the attempt's cookies.
            shared = StepContext(values=values, timeout=journey.timeout, user_agent=_USER_AGENT)
            try:
                steps, ok = await self._attempt(journey, attempt, values, shared, trace_id)
                steps += await self._cleanup(journey, attempt, values, shared, trace_id)
            finally:
                await shared.aclose()
            if attempt == 1:
                first_success = ok
            if ok:
                return finish(True, attempt, first_success, steps)
            if attempt < attempts:
                root.add_event("retry", {"synthetic.attempt": attempt + 1})
                await asyncio.sleep(journey.retry_delay)
        return finish(False, attempts, first_success, steps)

    async def _attempt(
        self,
        journey: Journey,
        attempt: int,
        values: dict[str, object],
        shared: StepContext,
        trace_id: str,
    ) -> tuple[list[StepResult], bool]:
        results: list[StepResult] = []
        deadline = time.monotonic() + journey.timeout
        for index, step in enumerate(journey.steps):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                results += self._skipped(journey.steps[index:], attempt, "the journey timed out")
                return results, False
            result = await self._step(
                journey,
                step,
                attempt=attempt,
                values=values,
                shared=shared,
                budget=remaining,
                trace_id=trace_id,
            )
            results.append(result)
            if not result.success:
                results += self._skipped(
                    journey.steps[index + 1 :], attempt, f"step {step.name!r} failed"
                )
                return results, False
        return results, True

    async def _cleanup(
        self,
        journey: Journey,
        attempt: int,
        values: dict[str, object],
        shared: StepContext,
        trace_id: str,
    ) -> list[StepResult]:
        results: list[StepResult] = []
        deadline = time.monotonic() + journey.timeout
        for step in journey.cleanup:
            missing = sorted(n for n in step.references() if n not in values)
            remaining = deadline - time.monotonic()
            if missing or remaining <= 0:
                reason = (
                    f"needs {', '.join(missing)}, which no step extracted"
                    if missing
                    else "the cleanup budget ran out"
                )
                results += self._skipped([step], attempt, reason, cleanup=True)
                continue
            result = await self._step(
                journey,
                step,
                attempt=attempt,
                values=values,
                shared=shared,
                budget=remaining,
                trace_id=trace_id,
                cleanup=True,
            )
            results.append(result)
        return results

    def _skipped(
        self, steps: list[Step], attempt: int, reason: str, *, cleanup: bool = False
    ) -> list[StepResult]:
        return [
            StepResult(
                name=step.name,
                kind=step.kind,
                success=False,
                duration_seconds=0.0,
                attempt=attempt,
                cleanup=cleanup,
                skipped=True,
                error=f"skipped: {reason}",
            )
            for step in steps
        ]

    async def _step(
        self,
        journey: Journey,
        step: Step,
        *,
        attempt: int,
        values: dict[str, object],
        shared: StepContext,
        budget: float,
        trace_id: str,
        cleanup: bool = False,
    ) -> StepResult:
        timeout = min(step.timeout or journey.timeout, budget)
        is_http = isinstance(step, HttpStep)
        attributes: dict[str, Any] = {
            "synthetic": True,
            "synthetic.journey": journey.name,
            "synthetic.step": step.name,
            "synthetic.attempt": attempt,
            "synthetic.cleanup": cleanup,
        }
        if isinstance(step, HttpStep):
            attributes["http.request.method"] = step.method
        with self.tracer.start_as_current_span(
            f"{'cleanup' if cleanup else 'step'} {step.name}",
            kind=SpanKind.CLIENT if is_http else SpanKind.INTERNAL,
            attributes=attributes,
        ) as span:
            headers: dict[str, str] = {}
            _PROPAGATOR.inject(headers)
            step_context = StepContext(
                values=values,
                timeout=timeout,
                propagation_headers=headers,
                clients=shared.clients,
                cookies=shared.cookies,
                user_agent=shared.user_agent,
            )
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout + 0.5):
                    outcome = await EXECUTORS[step.kind].execute(step, step_context)
            except TemplateError as problem:
                outcome = None
                failure = str(problem)
            except TimeoutError:
                outcome = None
                failure = f"timed out after {timeout:g}s"
            duration = time.perf_counter() - started
            if outcome is None:
                result = StepResult(
                    name=step.name,
                    kind=step.kind,
                    success=False,
                    duration_seconds=duration,
                    attempt=attempt,
                    cleanup=cleanup,
                    error=redact(failure),
                )
            else:
                try:
                    conditions = step.conditions_with(values)
                except (TemplateError, ConditionError) as problem:
                    conditions, outcome.error = [], f"condition: {problem}"
                checked = [c.evaluate(outcome.observation) for c in conditions]
                reason = outcome.error
                success = reason is None and all(c.success for c in checked)
                if success:
                    reason = _extract(step, outcome, values)
                    success = reason is None
                result = StepResult(
                    name=step.name,
                    kind=step.kind,
                    success=success,
                    duration_seconds=duration,
                    attempt=attempt,
                    cleanup=cleanup,
                    status_code=outcome.observation.status,
                    cert_expiry=outcome.cert_expiry,
                    conditions=[type(c)(c.condition, c.success, redact(c.detail)) for c in checked],
                    error=redact(reason) if reason else None,
                )
            result.span_id = format(span.get_span_context().span_id, "016x")
            if result.status_code is not None:
                span.set_attribute("http.response.status_code", result.status_code)
            if not result.success:
                span.set_status(Status(StatusCode.ERROR, result.summary()))
            self._log_step(journey, result)
        self.observer.step_finished(journey, result, trace_id)
        return result

    @staticmethod
    def _log_step(journey: Journey, result: StepResult) -> None:
        log.log(
            logging.INFO if result.success else logging.WARNING,
            "step finished",
            extra={
                "journey": journey.name,
                "step": result.name,
                "step_kind": result.kind,
                "attempt": result.attempt,
                "cleanup": result.cleanup,
                "success": result.success,
                "duration_ms": round(result.duration_seconds * 1000, 1),
                "status_code": result.status_code,
                "reason": result.summary() or None,
            },
        )

    @staticmethod
    def _log_run(journey: Journey, result: RunResult) -> None:
        log.log(
            logging.INFO if result.success else logging.WARNING,
            "journey finished",
            extra={
                "journey": journey.name,
                "outcome": result.outcome,
                "success": result.success,
                "attempts": result.attempts,
                "duration_ms": round(result.duration_seconds * 1000, 1),
                "failing_step": result.failing_step.name if result.failing_step else None,
                "reason": result.failure_reason() or None,
                "labels": json.dumps(result.labels, sort_keys=True) if result.labels else None,
            },
        )
