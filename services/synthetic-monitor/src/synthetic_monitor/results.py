"""What a run produced: one ``RunResult`` per journey run, one ``StepResult`` per step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from synthetic_monitor.conditions import ConditionResult

__all__ = ["RunResult", "StepResult"]

Outcome = Literal["success", "flaky", "failure"]


@dataclass
class StepResult:
    """One step of one attempt (or a cleanup step)."""

    name: str
    kind: str
    success: bool
    duration_seconds: float
    attempt: int
    cleanup: bool = False
    skipped: bool = False
    status_code: int | None = None
    #: Unix time at which the peer certificate expires (https and tls steps).
    cert_expiry: float | None = None
    conditions: list[ConditionResult] = field(default_factory=list)
    error: str | None = None
    span_id: str = ""

    def summary(self) -> str:
        """Return why the step failed, in one line (empty when it passed)."""
        if self.success:
            return ""
        if self.error:
            return self.error
        failed = [c.detail for c in self.conditions if not c.success]
        return "; ".join(failed) or "failed"


@dataclass
class RunResult:
    """One run of a journey: every attempt's verdict and the steps of the last attempt."""

    journey: str
    kind: str
    success: bool
    attempts: int
    first_attempt_success: bool
    started_at: float
    duration_seconds: float
    trace_id: str
    steps: list[StepResult] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def outcome(self) -> Outcome:
        """Return success, flaky (passed only after a retry) or failure."""
        if not self.success:
            return "failure"
        return "success" if self.attempts == 1 else "flaky"

    @property
    def failing_step(self) -> StepResult | None:
        """Return the first step (not cleanup) of the last attempt that failed."""
        for step in self.steps:
            if not step.success and not step.cleanup and not step.skipped:
                return step
        return None

    def failure_reason(self) -> str:
        """Return why the run failed, in one line (empty when it passed)."""
        if self.success:
            return ""
        step = self.failing_step
        if step is not None:
            return f"step {step.name!r}: {step.summary()}"
        return self.error or "failed"

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        data = asdict(self)
        data["outcome"] = self.outcome
        step = self.failing_step
        data["failing_step"] = step.name if step is not None else None
        data["reason"] = self.failure_reason()
        return data
