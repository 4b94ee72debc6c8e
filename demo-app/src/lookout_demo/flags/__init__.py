"""Feature flags through the OpenFeature SDK: a file-backed provider and a telemetry hook.

``FileFlagProvider`` serves flags from a JSON file (``DEMO_FLAGS_FILE``; the packaged
``default.json`` otherwise) in flagd's shape (``flags.<key>.state``, ``variants``,
``defaultVariant``) and re-reads it when it changes (hot reload: its mtime is checked at
most once per ``check_interval_seconds``); a file that does not parse is logged and the
flags in force stay. ``FlagTelemetryHook`` counts every evaluation in
``feature_flag_evaluations_total{flag, variant}`` and adds the OpenTelemetry
``feature_flag.evaluation`` event (semantic conventions: ``feature_flag.key``,
``feature_flag.result.variant``, ``feature_flag.provider.name``, ...) to the active span.
Label values are bounded: flags and variants that the file defined, else ``other``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from importlib.resources import files
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import Metadata
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
from openfeature.telemetry import create_evaluation_event
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter

__all__ = ["DEFAULT_FLAGS_FILE", "FeatureFlags", "FileFlagProvider", "FlagTelemetryHook"]

log = logging.getLogger("lookout_demo.flags")

#: The flags the demo ships with.
DEFAULT_FLAGS_FILE = Path(str(files("lookout_demo") / "flags" / "default.json"))
#: openfeature-sdk 0.10 still emits the deprecated attribute names: renamed to the current
#: semantic conventions (https://opentelemetry.io/docs/specs/semconv/registry/attributes/feature-flag/).
_CURRENT_NAMES = {
    "feature_flag.variant": "feature_flag.result.variant",
    "feature_flag.provider_name": "feature_flag.provider.name",
    "feature_flag.evaluation.reason": "feature_flag.result.reason",
    "feature_flag.evaluation.error.message": "feature_flag.error.message",
}
#: At most this many flag keys become label values; more are counted as "other".
MAX_FLAG_LABELS = 50


def _load(path: Path) -> dict[str, InMemoryFlag[Any]]:
    """Parse a flags file; raise ValueError naming the file and the bad flag."""
    document = json.loads(path.read_text(encoding="utf-8"))
    flags: dict[str, InMemoryFlag[Any]] = {}
    for key, spec in (document.get("flags") or {}).items():
        try:
            variants = dict(spec["variants"])
            default = str(spec["defaultVariant"])
            state = InMemoryFlag.State(spec.get("state", "ENABLED"))
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{path}: flag {key!r} needs variants, defaultVariant and state ({exc})"
            raise ValueError(msg) from exc
        if default not in variants:
            msg = f"{path}: flag {key!r}: defaultVariant {default!r} is not one of its variants"
            raise ValueError(msg)
        flags[key] = InMemoryFlag(default_variant=default, variants=variants, state=state)
    return flags


class FileFlagProvider(InMemoryProvider):
    """Flags from a JSON file, re-read when the file changes."""

    def __init__(self, path: Path, *, check_interval_seconds: float = 1.0) -> None:
        self.path = path
        self.check_interval_seconds = check_interval_seconds
        self._mtime = path.stat().st_mtime_ns
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.reloads = 0
        super().__init__(_load(path))

    def get_metadata(self) -> Metadata:
        """Name this provider (it goes on every evaluation event)."""
        return Metadata(name="lookout-file")

    @property
    def flag_variants(self) -> dict[str, set[str]]:
        """Return each flag's variant names."""
        return {key: set(flag.variants) for key, flag in self._flags.items()}

    def maybe_reload(self) -> None:
        """Re-read the file when its mtime changed (checked at most once per interval)."""
        now = time.monotonic()
        if now - self._checked < self.check_interval_seconds:
            return
        with self._lock:
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime_ns
                if mtime == self._mtime:
                    return
                self._mtime = mtime  # a bad version is reported once, not at every check
                self._flags = _load(self.path)
            except (OSError, ValueError) as exc:
                log.warning(
                    "flags file not reloaded; the flags in force stay",
                    extra={"file": str(self.path), "error": str(exc)},
                )
                return
            self.reloads += 1
            log.info("flags reloaded", extra={"file": str(self.path), "flags": len(self._flags)})

    def _resolve(
        self, flag_key: str, default_value: Any, evaluation_context: EvaluationContext | None
    ) -> FlagResolutionDetails[Any]:
        self.maybe_reload()
        return super()._resolve(flag_key, default_value, evaluation_context)


class FlagTelemetryHook(Hook):
    """Count evaluations by flag and variant; put the evaluation event on the active span."""

    def __init__(self, counter: Counter | None, provider: FileFlagProvider) -> None:
        self.counter = counter
        self.provider = provider

    def _labels(self, flag: str, variant: str | None) -> tuple[str, str]:
        known = self.provider.flag_variants
        if flag not in known or list(known).index(flag) >= MAX_FLAG_LABELS:
            return "other", "other"
        if variant is None:
            return flag, "default"
        return flag, variant if variant in known[flag] else "other"

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        """Record one evaluation."""
        if self.counter is not None:
            self.counter.labels(*self._labels(details.flag_key, details.variant)).inc()
        span = trace.get_current_span()
        if span.is_recording():
            event = create_evaluation_event(hook_context, details)
            attributes = {
                _CURRENT_NAMES.get(str(k), str(k)): v for k, v in event.attributes.items()
            }
            span.add_event(event.name, attributes)

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        """Record a failed evaluation (the caller gets its default value)."""
        if self.counter is not None:
            self.counter.labels(self._labels(hook_context.flag_key, None)[0], "error").inc()


class FeatureFlags:
    """One app's OpenFeature client, on its own provider domain."""

    def __init__(
        self,
        path: Path | None,
        registry: CollectorRegistry | None,
        *,
        check_interval_seconds: float = 1.0,
    ) -> None:
        self.provider = FileFlagProvider(
            path or DEFAULT_FLAGS_FILE, check_interval_seconds=check_interval_seconds
        )
        counter = None
        if registry is not None:
            counter = Counter(
                "feature_flag_evaluations",
                "Feature flag evaluations by flag and variant (OpenFeature).",
                ["flag", "variant"],
                registry=registry,
            )
        # A domain per app: tests (and one process serving two apps) keep their providers apart.
        domain = f"lookout-demo-{uuid.uuid4().hex[:8]}"
        api.set_provider(self.provider, domain=domain)
        self.client: OpenFeatureClient = api.get_client(domain=domain)
        self.client.add_hooks([FlagTelemetryHook(counter, self.provider)])

    def enabled(self, key: str, default: bool, *, user_id: str | None = None) -> bool:
        """Evaluate a boolean flag for a user (the targeting key)."""
        context = EvaluationContext(targeting_key=user_id) if user_id else None
        return self.client.get_boolean_value(key, default, context)

    def text(self, key: str, default: str, *, user_id: str | None = None) -> str:
        """Evaluate a string flag for a user."""
        context = EvaluationContext(targeting_key=user_id) if user_id else None
        return self.client.get_string_value(key, default, context)
