"""Test timings for alerting: shorter `for:`, intervals and group timers, on COPIES of the configs.

The shipped files keep production timings (a 2-minute `for:`, a 15 s evaluation, a 30 s group
wait, ...). A chaos test that waited for them would take many minutes per scenario, so the
native stack (``NativeStack(alert_timing=AlertTiming(...))``) rewrites the copies it makes in
its own folders, never the files in the repository. Every value is parsed and written back as
YAML (a value in a comment or an annotation is never touched), and each one is a cap: a shipped
value already shorter than the test's (the Watchdog route's ``group_wait: 0s``) stays. What is
changed:

* prometheus.yml: ``global.scrape_interval``, ``global.evaluation_interval`` (set when absent:
  the default is 1m), each scrape job's own ``scrape_interval``, and ``scrape_timeout``
  wherever it would exceed its interval (Prometheus refuses a timeout longer than the interval);
* every rule file the config's ``rule_files`` names, and every rule file under the Loki
  ruler's local directory: each alerting rule's ``for:`` and each group's ``interval:``;
* alertmanager.yml: ``group_wait``, ``group_interval`` and ``repeat_interval`` of the root route
  (set when absent) and of every child route that sets them;
* loki.yaml: ``ruler.evaluation_interval``.

And, for the synthetic monitor (``retime_journeys``, used through ``mount_sources``): the
``interval`` and ``jitter`` of every journey and check, in a copy of its journeys folder, so a
broken journey is seen within seconds instead of at its next minute.

Rates and windows inside expressions (``rate(x[5m])``) are left as shipped: they are part of
what an alert means, and a test makes enough traffic for them instead.

References (the versions the tests run): Prometheus 2.42 configuration
(https://prometheus.io/docs/prometheus/2.42/configuration/configuration/ and
.../alerting_rules/), Alertmanager 0.25 (https://prometheus.io/docs/alerting/0.25/configuration/),
Loki 3.7 ruler (https://grafana.com/docs/loki/v3.7.x/configure/#ruler).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "AlertTiming",
    "TimingError",
    "apply_alert_timing",
    "format_duration",
    "parse_duration",
    "retime_alertmanager",
    "retime_journeys",
    "retime_loki",
    "retime_prometheus",
    "retime_rules",
]

#: A Prometheus/Alertmanager duration: units from years down to milliseconds, in this order.
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNITS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)


class TimingError(ValueError):
    """A duration or a config file could not be read; the message names the file and field."""


def parse_duration(text: object, where: str) -> float:
    """Return a duration such as ``1h30m`` or ``500ms`` in seconds; ``where`` names the field."""
    value = str(text).strip()
    found = _DURATION.match(value)
    if value == "0":
        return 0.0
    if not value or found is None:
        msg = f"{where}: {value!r} is not a duration (e.g. 30s, 5m, 1h30m, 500ms)"
        raise TimingError(msg)
    return sum(int(n) * unit for n, unit in zip(found.groups(), _UNITS, strict=True) if n)


def format_duration(seconds: float) -> str:
    """Return seconds as a duration both Prometheus and Alertmanager read (``5s``, ``250ms``)."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


@dataclass(frozen=True)
class AlertTiming:
    """Caps, in seconds, for the alerting pipeline's timings in a test stack."""

    #: Longest ``for:`` of any alerting rule (Prometheus and the Loki ruler).
    rule_for: float = 5.0
    #: Prometheus's and the Loki ruler's rule evaluation interval.
    evaluation_interval: float = 2.0
    #: How often Prometheus scrapes every target.
    scrape_interval: float = 2.0
    #: Alertmanager: wait before a new group's first notification.
    group_wait: float = 2.0
    #: Alertmanager: wait before notifying a group's changes (new alerts, resolved ones).
    group_interval: float = 5.0
    #: Alertmanager: wait before repeating an unchanged notification.
    repeat_interval: float = 600.0

    def __post_init__(self) -> None:
        """Refuse timings the tools would refuse, naming the field."""
        for name in ("evaluation_interval", "scrape_interval", "group_interval", "repeat_interval"):
            if getattr(self, name) <= 0:
                msg = f"AlertTiming.{name} must be above 0 s, not {getattr(self, name)}"
                raise TimingError(msg)
        for name in ("rule_for", "group_wait"):
            if getattr(self, name) < 0:
                msg = f"AlertTiming.{name} must be 0 s or more, not {getattr(self, name)}"
                raise TimingError(msg)
        if self.repeat_interval < self.group_interval:
            # Alertmanager repeats only at a group_interval flush: a shorter repeat means nothing.
            msg = (
                f"AlertTiming.repeat_interval ({self.repeat_interval} s) must be at least "
                f"group_interval ({self.group_interval} s)"
            )
            raise TimingError(msg)


def _cap(mapping: dict[str, Any], key: str, limit: float, where: str, *, add: bool) -> None:
    """Lower ``mapping[key]`` to ``limit`` (a duration); set it when absent and ``add``."""
    if key in mapping and mapping[key] is not None:
        current = parse_duration(mapping[key], f"{where}.{key}")
        if current <= limit:
            return
    elif not add:
        return
    mapping[key] = format_duration(limit)


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        msg = f"{where}: expected a mapping, found {type(value).__name__}"
        raise TimingError(msg)
    return value


def retime_prometheus(config: dict[str, Any], timing: AlertTiming, where: str) -> dict[str, Any]:
    """Cap prometheus.yml's scrape and evaluation intervals (and timeouts to match)."""
    config = _mapping(config, where)
    glob_ = config.setdefault("global", {})
    glob_ = _mapping(glob_, f"{where}: global")
    config["global"] = glob_
    _cap(glob_, "scrape_interval", timing.scrape_interval, f"{where}: global", add=True)
    _cap(glob_, "evaluation_interval", timing.evaluation_interval, f"{where}: global", add=True)
    interval = parse_duration(glob_["scrape_interval"], f"{where}: global.scrape_interval")
    # The global timeout defaults to 10 s: above a 2 s interval Prometheus refuses the config.
    _cap(glob_, "scrape_timeout", interval, f"{where}: global", add=True)
    global_timeout = parse_duration(glob_["scrape_timeout"], f"{where}: global.scrape_timeout")
    for index, raw_job in enumerate(config.get("scrape_configs") or []):
        job_where = f"{where}: scrape_configs[{index}]"
        job = _mapping(raw_job, job_where)
        _cap(job, "scrape_interval", timing.scrape_interval, job_where, add=False)
        own = parse_duration(job.get("scrape_interval", glob_["scrape_interval"]), job_where)
        if "scrape_timeout" in job or global_timeout > own:
            _cap(job, "scrape_timeout", own, job_where, add=True)
    return config


def retime_rules(document: dict[str, Any], timing: AlertTiming, where: str) -> dict[str, Any]:
    """Cap each alerting rule's ``for:`` and each group's ``interval:`` in a rule file."""
    document = _mapping(document, where)
    for g_index, raw_group in enumerate(document.get("groups") or []):
        group_where = f"{where}: groups[{g_index}]"
        group = _mapping(raw_group, group_where)
        _cap(group, "interval", timing.evaluation_interval, group_where, add=False)
        for r_index, raw_rule in enumerate(group.get("rules") or []):
            rule_where = f"{group_where}.rules[{r_index}]"
            rule = _mapping(raw_rule, rule_where)
            if "alert" in rule:
                _cap(rule, "for", timing.rule_for, rule_where, add=False)
    return document


def retime_alertmanager(config: dict[str, Any], timing: AlertTiming, where: str) -> dict[str, Any]:
    """Cap the group timers of Alertmanager's route tree (the root's are set when absent)."""
    config = _mapping(config, where)
    root = _mapping(config.get("route"), f"{where}: route")
    if not root:
        msg = f"{where}: route: Alertmanager needs a root route"
        raise TimingError(msg)

    def walk(route: dict[str, Any], route_where: str, *, is_root: bool) -> None:
        for key, limit in (
            ("group_wait", timing.group_wait),
            ("group_interval", timing.group_interval),
            ("repeat_interval", timing.repeat_interval),
        ):
            _cap(route, key, limit, route_where, add=is_root)
        for index, child in enumerate(route.get("routes") or []):
            child_where = f"{route_where}.routes[{index}]"
            walk(_mapping(child, child_where), child_where, is_root=False)

    walk(root, f"{where}: route", is_root=True)
    return config


def retime_loki(config: dict[str, Any], timing: AlertTiming, where: str) -> dict[str, Any]:
    """Cap the Loki ruler's evaluation interval (default 1m: set when absent)."""
    config = _mapping(config, where)
    ruler = _mapping(config.get("ruler"), f"{where}: ruler")
    if ruler:
        _cap(ruler, "evaluation_interval", timing.evaluation_interval, f"{where}: ruler", add=True)
    return config


def _rewrite(path: Path, change: Callable[[dict[str, Any], str], dict[str, Any]]) -> None:
    """Load a YAML file, change it, write it back (comments are not kept: it is a copy)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        msg = f"{path}: not valid YAML ({error})"
        raise TimingError(msg) from None
    changed = change(document, str(path))
    path.write_text(
        yaml.safe_dump(changed, sort_keys=False, allow_unicode=True, width=1000), encoding="utf-8"
    )


def _config_file(argv: Iterable[str], service: str) -> Path:
    """Return the file a ``-config.file=`` / ``--config.file=`` argument names."""
    for arg in argv:
        flag, _, value = arg.partition("=")
        if flag.lstrip("-") == "config.file" and value:
            return Path(value)
    msg = f"{service}: its command has no --config.file=... argument to find its config by"
    raise TimingError(msg)


def _rule_files(config: dict[str, Any], config_path: Path) -> list[Path]:
    files: list[Path] = []
    for pattern in config.get("rule_files") or []:
        # Prometheus globs the file name only (filepath.Glob): the folder is fixed.
        full = Path(pattern) if Path(pattern).is_absolute() else config_path.parent / pattern
        files.extend(sorted(full.parent.glob(full.name)))
    return files


def apply_alert_timing(service: str, argv: list[str], timing: AlertTiming) -> list[Path]:
    """Retime a rendered service's copied config files; return the files changed.

    ``argv`` is the service's command as it runs here (paths already in its own folder).
    Services other than Prometheus, Alertmanager and Loki have no alerting timings: nothing.
    """
    changed: list[Path] = []
    if service == "prometheus":
        config_path = _config_file(argv, service)
        _rewrite(config_path, lambda doc, where: retime_prometheus(doc, timing, where))
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        changed.append(config_path)
        for rules in _rule_files(config, config_path):
            _rewrite(rules, lambda doc, where: retime_rules(doc, timing, where))
            changed.append(rules)
    elif service == "alertmanager":
        config_path = _config_file(argv, service)
        _rewrite(config_path, lambda doc, where: retime_alertmanager(doc, timing, where))
        changed.append(config_path)
    elif service == "loki":
        config_path = _config_file(argv, service)
        _rewrite(config_path, lambda doc, where: retime_loki(doc, timing, where))
        changed.append(config_path)
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        ruler = (config or {}).get("ruler") or {}
        directory = ((ruler.get("storage") or {}).get("local") or {}).get("directory")
        if directory:
            for rules in sorted(Path(directory).rglob("*")):
                if rules.suffix in {".yml", ".yaml"} and rules.is_file():
                    _rewrite(rules, lambda doc, where: retime_rules(doc, timing, where))
                    changed.append(rules)
    return changed


def _seconds(value: object, where: str) -> float:
    """Return a monitor duration (``60s``, ``250ms``, or a number of seconds) in seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return parse_duration(value, where)


def retime_journeys(source: Path, dest: Path, interval: float, jitter: float) -> Path:
    """Copy a journeys folder to ``dest`` with every interval and jitter capped; return dest.

    ``defaults`` of each file and each journey or check that sets its own are capped; the
    steps, conditions and everything else are copied as they are.
    """
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix not in {".yml", ".yaml"}:
            target.write_bytes(path.read_bytes())
            continue
        try:
            document = _mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
        except yaml.YAMLError as error:
            msg = f"{path}: not valid YAML ({error})"
            raise TimingError(msg) from None
        sections = [("defaults", _mapping(document.get("defaults"), f"{path}: defaults"))]
        for kind in ("journeys", "checks"):
            for index, item in enumerate(document.get(kind) or []):
                sections.append((f"{kind}[{index}]", _mapping(item, f"{path}: {kind}[{index}]")))
        for where, section in sections:
            for key, limit in (("interval", interval), ("jitter", jitter)):
                if key in section and _seconds(section[key], f"{path}: {where}.{key}") > limit:
                    section[key] = format_duration(limit)
        defaults = sections[0][1]
        if defaults:
            document["defaults"] = defaults
        target.write_text(
            yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000),
            encoding="utf-8",
        )
    return dest
