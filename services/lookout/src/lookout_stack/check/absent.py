"""Components that do not run where the check runs (``--absent``): their panels are not checkable.

A PromQL query reads only an absent component's metrics when every series selector in it is
that component's: its metric name starts with one of the component's metric prefixes
(``otelcol_`` for the collector), or it selects the component's scrape job exactly
(``job="otel-collector"``). Such a query cannot have data where the component does not run, so
it is reported as not checkable, with the reason, and never counted as passed. A query that
mixes the component's metrics with others is checked as usual (it can and must have data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import promql_parser

from lookout_stack.check.errors import CheckInputError

__all__ = ["KNOWN_COMPONENTS", "Absent", "parse_absent"]

#: Metric name prefixes of the components a Lookout stack may run without, as they export them
#: (the collector's internal telemetry: otelcol_*; Grafana's /metrics: grafana_*).
KNOWN_COMPONENTS: Mapping[str, tuple[str, ...]] = {
    "otel-collector": ("otelcol_",),
    "grafana": ("grafana_",),
}


@dataclass(frozen=True)
class Absent:
    """The absent components, each with its metric name prefixes (its job name always counts)."""

    components: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.components)

    def _owner_of(self, name: str, job: str | None) -> str | None:
        for component, prefixes in self.components.items():
            if job == component or (name and name.startswith(prefixes)):
                return component
        return None

    def owner(self, expr: str) -> str | None:
        """Return the absent component whose metrics are all ``expr`` reads, else None."""
        try:
            tree = promql_parser.parse(expr)
        except ValueError:
            return None  # the backend reports the syntax error
        owners: list[str | None] = []

        def visit(node: Any) -> bool:
            if isinstance(node, promql_parser.VectorSelector):
                matchers = node.matchers.matchers
                equal = {m.name: m.value for m in matchers if m.op == promql_parser.MatchOp.Equal}
                name = node.name or equal.get("__name__", "")
                owners.append(self._owner_of(name, equal.get("job")))
            return True

        promql_parser.walk(tree, visit)
        if owners and owners[0] is not None and all(o == owners[0] for o in owners):
            return owners[0]
        return None

    def reason(self, component: str) -> str:
        """Return why a query of ``component``'s metrics is not checkable."""
        prefixes = ", ".join(f"{p}*" for p in self.components[component])
        what = f"metrics ({prefixes} or job={component!r})" if prefixes else f"job={component!r}"
        return f"reads only {component}'s {what}, and --absent says {component} does not run here"


def parse_absent(values: list[str]) -> Absent:
    """Return the components of ``--absent NAME`` or ``--absent NAME=PREFIX[,PREFIX...]``."""
    components: dict[str, tuple[str, ...]] = {}
    for value in values:
        name, sep, prefixes = value.partition("=")
        name = name.strip()
        if not name:
            msg = f"--absent {value!r}: expected a component name (e.g. otel-collector)"
            raise CheckInputError(msg)
        if sep:
            listed = tuple(p.strip() for p in prefixes.split(",") if p.strip())
            if not listed:
                msg = f"--absent {value!r}: expected NAME=PREFIX[,PREFIX...] (e.g. myexp=myexp_)"
                raise CheckInputError(msg)
            components[name] = listed
        else:
            components[name] = tuple(KNOWN_COMPONENTS.get(name, ()))
    return Absent(components)
