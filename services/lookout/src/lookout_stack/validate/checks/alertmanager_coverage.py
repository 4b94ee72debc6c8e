"""alertmanager/route-tests.yaml covers alertmanager.yml: every route, every inhibit rule.

amtool tests each route case (the `amtool-routes` check) but cannot say which routes no case
reaches, and inhibition needs a running Alertmanager (the integration tests). So a small model
of Alertmanager's routing and inhibition (children tried in order, ``continue``, matchers,
``equal``) walks the cases: it must agree with each case, and together the cases must pass
through every route (the root's fall-through included) and show every inhibit rule muting.
Each receiver is one webhook to the relay with the bearer token from the compose secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tree import absent, outcome, read_yaml, skipped

__all__ = [
    "CASES_FILE",
    "CHECK",
    "CONFIG_FILE",
    "RELAY_URL",
    "SECRET_PATH",
    "AlertmanagerCoverage",
    "RouteHit",
    "all_route_paths",
    "inhibit_case_problem",
    "inhibit_rule_mutes",
    "label_matches",
    "receiver_problems",
    "route_coverage_problems",
    "route_matches",
    "unshown_inhibit_problem",
    "walk_problem",
    "walk_routes",
]

CONFIG_FILE = "alertmanager/alertmanager.yml"
CASES_FILE = "alertmanager/route-tests.yaml"
#: Where compose mounts the relay's token (the `relay_token` secret), and the relay's one URL.
SECRET_PATH = "/run/secrets/relay_token"  # noqa: S105 (a file path, not a secret)
RELAY_URL = "http://webhook-relay:8080/webhook"

# name op "value" (or an unquoted value), as in Alertmanager's `matchers` lists.
MATCHER = re.compile(
    r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$'
)


def label_matches(matcher: str, labels: dict[str, str]) -> bool:
    """Tell whether ``labels`` satisfy one Alertmanager matcher string."""
    found = MATCHER.match(matcher)
    if found is None:
        msg = (
            f"{CONFIG_FILE}: cannot read matcher {matcher!r}; "
            'write it as name="value" (or !=, =~, !~)'
        )
        raise ValueError(msg)
    name, op, quoted, bare = found.groups()
    wanted = bytes(quoted, "utf-8").decode("unicode_escape") if quoted is not None else bare
    value = labels.get(name, "")
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted
    full = re.fullmatch(wanted, value) is not None
    return full if op == "=~" else not full


def route_matches(route: dict[str, Any], labels: dict[str, str]) -> bool:
    """Tell whether a route's matchers all hold for ``labels`` (the root matches everything)."""
    for legacy in ("match", "match_re"):
        if legacy in route:
            msg = f"{CONFIG_FILE}: use `matchers`, not deprecated `{legacy}`"
            raise ValueError(msg)
    return all(label_matches(m, labels) for m in route.get("matchers", []))


@dataclass
class RouteHit:
    """A route that an alert ends at, with its path in the tree and its receiver."""

    path: str
    receiver: str
    visited: list[str] = field(default_factory=list)


def walk_routes(
    route: dict[str, Any], labels: dict[str, str], path: str = "route", receiver: str = ""
) -> list[RouteHit]:
    """Return the routes an alert with ``labels`` ends at, as Alertmanager picks them.

    Children are tried in order; a matching child stops the search unless it has
    ``continue: true``; a route none of whose children match takes the alert itself.
    """
    if not route_matches(route, labels):
        return []
    receiver = route.get("receiver", receiver)
    hits: list[RouteHit] = []
    for index, child in enumerate(route.get("routes", [])):
        child_hits = walk_routes(child, labels, f"{path}.routes[{index}]", receiver)
        hits.extend(child_hits)
        if child_hits and not child.get("continue", False):
            break
    if not hits:
        return [RouteHit(path, receiver, [path])]
    for hit in hits:
        hit.visited.insert(0, path)
    return hits


def all_route_paths(route: dict[str, Any], path: str = "route") -> list[str]:
    """Return the path of every route in the tree, the root first."""
    paths = [path]
    for index, child in enumerate(route.get("routes", [])):
        paths.extend(all_route_paths(child, f"{path}.routes[{index}]"))
    return paths


def inhibit_rule_mutes(
    rule: dict[str, Any], source: dict[str, str], target: dict[str, str]
) -> bool:
    """Tell whether one inhibit rule lets ``source`` mute ``target``."""
    for legacy in ("source_match", "source_match_re", "target_match", "target_match_re"):
        if legacy in rule:
            msg = f"{CONFIG_FILE}: use *_matchers, not deprecated `{legacy}`"
            raise ValueError(msg)
    return (
        all(label_matches(m, source) for m in rule.get("source_matchers", []))
        and all(label_matches(m, target) for m in rule.get("target_matchers", []))
        and all(source.get(name, "") == target.get(name, "") for name in rule.get("equal", []))
    )


def _labels(raw: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in raw.items()}


def walk_problem(route: dict[str, Any], case: dict[str, Any]) -> str | None:
    """Return how the walk disagrees with a route case's receivers, None when it agrees."""
    hits = walk_routes(route, _labels(case["labels"]))
    if [hit.receiver for hit in hits] == case["receivers"]:
        return None
    ends = [(hit.path, hit.receiver) for hit in hits]
    return f"case {case['name']!r}: the walk ends at {ends}, not {case['receivers']}"


def route_coverage_problems(route: dict[str, Any], cases: list[dict[str, Any]]) -> list[str]:
    """Return the routes no case passes through, and a missing fall-through case."""
    visited: set[str] = set()
    ended: set[str] = set()
    for case in cases:
        for hit in walk_routes(route, _labels(case["labels"])):
            visited.update(hit.visited)
            ended.add(hit.path)
    problems = [
        f"no case reaches {path} of {CONFIG_FILE}"
        for path in all_route_paths(route)
        if path not in visited
    ]
    if "route" not in ended:
        problems.append("add a case that falls through to the root receiver")
    return problems


def unshown_inhibit_problem(
    rule: dict[str, Any], index: int, cases: list[dict[str, Any]]
) -> str | None:
    """Return why no inhibition case shows inhibit_rules[index] muting, None when one does."""
    for case in cases:
        if case["inhibited"] and inhibit_rule_mutes(
            rule, _labels(case["source"]), _labels(case["target"])
        ):
            return None
    return f"no inhibition case shows inhibit_rules[{index}] ({rule}) muting"


def inhibit_case_problem(rules: list[dict[str, Any]], case: dict[str, Any]) -> str | None:
    """Return how the inhibition model disagrees with a case's expectation, or None."""
    source, target = _labels(case["source"]), _labels(case["target"])
    muted = any(inhibit_rule_mutes(rule, source, target) for rule in rules)
    if muted == case["inhibited"]:
        return None
    return f"case {case['name']!r}: expects inhibited={case['inhibited']}, the model says {muted}"


def receiver_problems(receiver: dict[str, Any]) -> list[str]:
    """Return how a receiver differs from one webhook to the relay with the bearer token."""
    name = receiver.get("name")
    others = sorted(k for k in receiver if k.endswith("_configs") and k != "webhook_configs")
    if others:
        return [f"receiver {name}: only webhook_configs to the relay, found {others}"]
    hooks = receiver.get("webhook_configs") or []
    if len(hooks) != 1:
        return [f"receiver {name}: expected one webhook_config, found {len(hooks)}"]
    hook, problems = hooks[0], []
    if hook.get("url") != RELAY_URL:
        problems.append(f"receiver {name}: url should be {RELAY_URL}")
    if hook.get("send_resolved") is not True:
        problems.append(f"receiver {name}: set send_resolved: true")
    auth = (hook.get("http_config") or {}).get("authorization") or {}
    if auth.get("credentials_file") != SECRET_PATH or auth.get("type", "Bearer") != "Bearer":
        problems.append(
            f"receiver {name}: http_config.authorization should be type Bearer with "
            f"credentials_file {SECRET_PATH}, got {auth}"
        )
    max_alerts = hook.get("max_alerts")
    if not isinstance(max_alerts, int) or isinstance(max_alerts, bool) or max_alerts < 0:
        problems.append(
            f"receiver {name}: set max_alerts to a deliberate limit (0 = none), got {max_alerts!r}"
        )
    return problems


class AlertmanagerCoverage:
    """Route and inhibition cases cover the config; receivers are the relay's webhook."""

    name = "alertmanager-coverage"

    def run(self, root: Path) -> CheckResult:
        """Walk the cases through the model; a finding per disagreement or uncovered part."""
        if reason := absent(root, CONFIG_FILE) or absent(root, CASES_FILE):
            return skipped(self.name, reason)
        config, cases = read_yaml(root / CONFIG_FILE), read_yaml(root / CASES_FILE)
        routes, inhibitions = cases.get("routes") or [], cases.get("inhibitions") or []
        rules = config.get("inhibit_rules") or []
        try:
            found = [walk_problem(config.get("route") or {}, case) for case in routes]
            found += route_coverage_problems(config.get("route") or {}, routes)
            found += [unshown_inhibit_problem(rule, i, inhibitions) for i, rule in enumerate(rules)]
            found += [inhibit_case_problem(rules, case) for case in inhibitions]
        except ValueError as error:
            return outcome(self.name, "", [Finding(CONFIG_FILE, str(error))])
        findings = [Finding(CASES_FILE, problem) for problem in found if problem]
        findings += [
            Finding(CONFIG_FILE, problem)
            for receiver in config.get("receivers") or []
            for problem in receiver_problems(receiver)
        ]
        detail = f"{len(routes)} route cases, {len(inhibitions)} inhibition cases"
        return outcome(self.name, detail, findings)


CHECK = AlertmanagerCoverage()
