"""When each alert notification reached a test's webhook receiver: the clock for detection times.

``WebhookReceiver`` keeps every request; ``Arrivals`` watches it from a thread and stamps each
new delivery with the wall-clock time it was first seen (every 0.1 s, so a detection time is
exact to about that), then answers questions by alert: which notifications carried alert X
with status S and these labels, through which Alertmanager receiver, and when.

A delivery's body is the Alertmanager webhook payload (version 4) as the relay's ``webhook``
target forwards it: ``receiver``, ``status``, ``alerts[]`` with ``labels``, ``annotations``,
``generatorURL`` (https://prometheus.io/docs/alerting/0.25/configuration/#webhook_config).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from stack_support.poll import poll_until
from stack_support.receiver import Delivery, WebhookReceiver

__all__ = ["Arrival", "Arrivals", "Seen"]


@dataclass(frozen=True)
class Arrival:
    """One notification and the time (``time.time()``) it was first seen at the receiver."""

    at: float
    delivery: Delivery

    @property
    def receiver(self) -> str:
        """Return the Alertmanager receiver the notification was routed to."""
        body = self.delivery.json
        return str(body.get("receiver", "")) if isinstance(body, dict) else ""

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """Return the notification's alerts."""
        body = self.delivery.json
        alerts: list[dict[str, Any]] = (body.get("alerts") or []) if isinstance(body, dict) else []
        return alerts


@dataclass(frozen=True)
class Seen:
    """One alert inside one notification."""

    arrival: Arrival
    alert: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        """Return the alert's labels."""
        labels: dict[str, str] = self.alert.get("labels") or {}
        return labels


class Arrivals:
    """Stamp a receiver's deliveries with their arrival time and find alerts in them."""

    def __init__(self, receiver: WebhookReceiver, interval: float = 0.1) -> None:
        self.receiver = receiver
        self.interval = interval
        self._seen: list[Arrival] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="arrivals", daemon=True)

    def __enter__(self) -> Arrivals:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def refresh(self) -> None:
        """Stamp the deliveries that arrived since the last look."""
        deliveries = self.receiver.snapshot()
        now = time.time()
        with self._lock:
            self._seen.extend(Arrival(now, d) for d in deliveries[len(self._seen) :])

    def all(self) -> list[Arrival]:
        """Return every notification so far, in arrival order."""
        self.refresh()
        with self._lock:
            return list(self._seen)

    def find(
        self, alertname: str, *, status: str | None = None, since: float = 0.0, **labels: str
    ) -> list[Seen]:
        """Return each alert named ``alertname`` (with ``status`` and ``labels``) since a time."""
        found = []
        for arrival in self.all():
            if arrival.at < since:
                continue
            for alert in arrival.alerts:
                alert_labels = alert.get("labels") or {}
                if alert_labels.get("alertname") != alertname:
                    continue
                if status is not None and alert.get("status") != status:
                    continue
                if all(alert_labels.get(k) == v for k, v in labels.items()):
                    found.append(Seen(arrival, alert))
        return found

    def wait_for(
        self,
        alertname: str,
        *,
        status: str,
        receivers: set[str],
        since: float,
        timeout: float,
        **labels: str,
    ) -> dict[str, Seen]:
        """Wait for the alert through every receiver in ``receivers``; return the first of each."""

        def arrived() -> dict[str, Seen] | None:
            first: dict[str, Seen] = {}
            for seen in self.find(alertname, status=status, since=since, **labels):
                first.setdefault(seen.arrival.receiver, seen)
            return first if receivers <= set(first) else None

        wanted = ", ".join(f"{k}={v}" for k, v in labels.items())
        return poll_until(
            arrived,
            f"{status} {alertname}{{{wanted}}} at the relay's target via {sorted(receivers)}",
            timeout=timeout,
            interval=0.2,
        )
