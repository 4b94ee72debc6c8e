"""Prometheus metrics: blackbox-exporter-style probe gauges plus histograms and SLO counters.

Gauges, per journey and step, as blackbox_exporter names them so existing queries carry
over; ``step=""`` is the journey as a whole (in PromQL an empty label equals an absent one,
so ``probe_success{step=""}`` selects journeys):

- ``probe_success`` (1/0), ``probe_duration_seconds``, ``probe_http_status_code``,
  ``probe_ssl_earliest_cert_expiry`` (Unix time; the leaf certificate, see the README).

Then: ``synthetic_step_duration_seconds`` and ``synthetic_journey_duration_seconds``
(histograms with the run's ``trace_id`` as exemplar), ``synthetic_journey_last_attempts`` (of
the last run) and ``synthetic_journey_attempts_total``, ``synthetic_journey_runs_total{result}``
(success | flaky | failure), the SLO pair ``synthetic_slo_runs_total`` /
``synthetic_slo_good_runs_total`` (good = passed at the FIRST attempt: a user does not
retry), ``synthetic_journey_last_run_timestamp_seconds``, ``synthetic_journey_info`` (the
journey's own labels), and the monitor's own health (scheduler lateness, skipped runs,
config reloads). Labels are journey and step names from the config: bounded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from synthetic_monitor import __version__
from synthetic_monitor.config.model import Journey
from synthetic_monitor.results import RunResult, StepResult
from synthetic_monitor.runner import RunObserver

__all__ = ["MonitorMetrics"]

_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class _JourneyInfo(Collector):
    """``synthetic_journey_info{journey, kind, <its labels>} 1`` for every configured journey."""

    def __init__(self) -> None:
        self.journeys: list[Journey] = []

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "synthetic_journey_info", "Configured journeys and their labels (value 1)."
        )
        for journey in self.journeys:
            labels = {**journey.labels, "journey": journey.name, "kind": journey.kind}
            family.samples.append(Sample("synthetic_journey_info", labels, 1.0, None, None))
        yield family


class MonitorMetrics(RunObserver):
    """Every metric the monitor exports, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        """Register the metrics; tests pass a fresh ``CollectorRegistry()``."""
        js = ["journey", "step"]
        self.probe_success = Gauge(
            "probe_success", "Whether the probe succeeded (1) or not (0).", js, registry=registry
        )
        self.probe_duration = Gauge(
            "probe_duration_seconds", "How long the probe took.", js, registry=registry
        )
        self.probe_status = Gauge(
            "probe_http_status_code",
            "Response HTTP status code (0 when none).",
            js,
            registry=registry,
        )
        self.probe_cert_expiry = Gauge(
            "probe_ssl_earliest_cert_expiry",
            "Unix time at which the peer certificate expires.",
            js,
            registry=registry,
        )
        self.step_duration = Histogram(
            "synthetic_step_duration_seconds",
            "Duration of each step, with the run's trace as exemplar.",
            js,
            buckets=_STEP_BUCKETS,
            registry=registry,
        )
        self.journey_duration = Histogram(
            "synthetic_journey_duration_seconds",
            "Duration of each run (all attempts and cleanup), with its trace as exemplar.",
            ["journey"],
            buckets=_STEP_BUCKETS,
            registry=registry,
        )
        self.attempts = Gauge(
            "synthetic_journey_last_attempts",
            "Attempts the last run needed.",
            ["journey"],
            registry=registry,
        )
        self.attempts_total = Counter(
            "synthetic_journey_attempts",
            "Attempts made, retries included.",
            ["journey"],
            registry=registry,
        )
        self.runs = Counter(
            "synthetic_journey_runs",
            "Finished runs by result: success, flaky (passed after a retry) or failure.",
            ["journey", "result"],
            registry=registry,
        )
        self.slo_total = Counter(
            "synthetic_slo_runs", "Runs counted by the SLO.", ["journey"], registry=registry
        )
        self.slo_good = Counter(
            "synthetic_slo_good_runs",
            "Runs that passed at their first attempt (the SLO's good events).",
            ["journey"],
            registry=registry,
        )
        self.last_run = Gauge(
            "synthetic_journey_last_run_timestamp_seconds",
            "Unix time at which the last run finished.",
            ["journey"],
            registry=registry,
        )
        self.lateness = Histogram(
            "synthetic_scheduler_lateness_seconds",
            "How late runs start against their (jittered) slot.",
            buckets=_LATENESS_BUCKETS,
            registry=registry,
        )
        self.skipped = Counter(
            "synthetic_runs_skipped",
            "Slots skipped because the previous run of the journey was still going.",
            ["journey"],
            registry=registry,
        )
        self.in_progress = Gauge(
            "synthetic_runs_in_progress", "Runs in progress now.", registry=registry
        )
        self.reloads = Counter(
            "synthetic_config_reloads",
            "Configuration reloads by result.",
            ["result"],
            registry=registry,
        )
        self.reload_ok = Gauge(
            "synthetic_config_last_reload_successful",
            "Whether the last configuration (re)load succeeded.",
            registry=registry,
        )
        self.journeys_configured = Gauge(
            "synthetic_journeys_configured",
            "Journeys (checks included) configured.",
            registry=registry,
        )
        build = Gauge(
            "synthetic_monitor_build_info",
            "Build information (value 1).",
            ["version"],
            registry=registry,
        )
        build.labels(__version__).set(1)
        self._info = _JourneyInfo()
        registry.register(self._info)
        for result in ("success", "failure"):
            self.reloads.labels(result)

    def configure(self, journeys: Iterable[Journey], removed: Iterable[Journey] = ()) -> None:
        """Publish the configured journeys; drop the series of removed ones."""
        current = list(journeys)
        self._info.journeys = current
        self.journeys_configured.set(len(current))
        for journey in removed:
            self.forget(journey)
        for journey in current:
            for result in ("success", "flaky", "failure"):
                self.runs.labels(journey.name, result)
            self.slo_total.labels(journey.name)
            self.slo_good.labels(journey.name)

    def forget(self, journey: Journey) -> None:
        """Remove every series of ``journey`` (it left the configuration)."""
        per_step: tuple[Gauge | Histogram, ...] = (
            self.probe_success,
            self.probe_duration,
            self.probe_status,
            self.probe_cert_expiry,
            self.step_duration,
        )
        for step in ["", *(s.name for s in [*journey.steps, *journey.cleanup])]:
            for metric in per_step:
                with contextlib.suppress(KeyError):
                    metric.remove(journey.name, step)
        single: tuple[Gauge | Histogram | Counter, ...] = (
            self.journey_duration,
            self.attempts,
            self.attempts_total,
            self.slo_total,
            self.slo_good,
            self.last_run,
            self.skipped,
        )
        for one in single:
            with contextlib.suppress(KeyError):
                one.remove(journey.name)
        for result in ("success", "flaky", "failure"):
            with contextlib.suppress(KeyError):
                self.runs.remove(journey.name, result)

    def step_finished(self, journey: Journey, step: StepResult, trace_id: str) -> None:
        """Record one step (skipped steps only as probe_success 0)."""
        labels = (journey.name, step.name)
        self.probe_success.labels(*labels).set(1 if step.success else 0)
        if step.skipped:
            return
        self.probe_duration.labels(*labels).set(step.duration_seconds)
        if step.kind == "http":
            self.probe_status.labels(*labels).set(step.status_code or 0)
        if step.cert_expiry is not None:
            self.probe_cert_expiry.labels(*labels).set(step.cert_expiry)
        self.step_duration.labels(*labels).observe(
            step.duration_seconds, exemplar={"trace_id": trace_id}
        )

    def run_finished(self, journey: Journey, result: RunResult) -> None:
        """Record one run: the journey-level probe gauges, attempts, results, SLO counters."""
        name = journey.name
        self.probe_success.labels(name, "").set(1 if result.success else 0)
        self.probe_duration.labels(name, "").set(result.duration_seconds)
        expiries = [s.cert_expiry for s in result.steps if s.cert_expiry is not None]
        if expiries:
            self.probe_cert_expiry.labels(name, "").set(min(expiries))
        statuses = [s.status_code for s in result.steps if s.status_code is not None]
        if statuses:
            self.probe_status.labels(name, "").set(statuses[-1])
        exemplar = {"trace_id": result.trace_id}
        self.journey_duration.labels(name).observe(result.duration_seconds, exemplar=exemplar)
        self.attempts.labels(name).set(result.attempts)
        self.attempts_total.labels(name).inc(result.attempts)
        self.runs.labels(name, result.outcome).inc(exemplar=exemplar)
        self.slo_total.labels(name).inc()
        good = self.slo_good.labels(name)  # created at 0, so a ratio exists from the start
        if result.first_attempt_success:
            good.inc()
        self.last_run.labels(name).set(result.started_at + result.duration_seconds)
