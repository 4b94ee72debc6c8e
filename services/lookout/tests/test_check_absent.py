"""`lookout check --absent`: queries of only a component that does not run are not checkable.

The CLI runs in-process against an address where nothing listens: a query that is checked
fails to connect (an error), a query of only the absent component's metrics is never sent.
"""

from __future__ import annotations

import pytest

from lookout_stack.check.absent import KNOWN_COMPONENTS, Absent, parse_absent
from lookout_stack.check.errors import CheckInputError
from lookout_support import FIXTURES, CliRun, run_cli

DASHBOARD = FIXTURES / "absent.json"
#: Nothing listens on the discard port of loopback.
NOWHERE = "http://127.0.0.1:9"
COLLECTOR = Absent({"otel-collector": KNOWN_COMPONENTS["otel-collector"]})


def check(*args: str) -> CliRun:
    """Run `lookout check` over the fixture, JSON out, no progress."""
    return run_cli("check", str(DASHBOARD), "--prometheus", NOWHERE, "--quiet", *args)


@pytest.mark.parametrize(
    ("expr", "owner"),
    [
        ("sum(rate(otelcol_receiver_accepted_spans_total[1m]))", "otel-collector"),
        ("max(otelcol_exporter_queue_size) / max(otelcol_queue_capacity)", "otel-collector"),
        ('up{job="otel-collector"}', "otel-collector"),
        ('up{job=~"otel-collector"}', None),
        ("sum(otelcol_exporter_sent_spans_total) / sum(tempo_spans_total)", None),
        ("sum(rate(tempo_spans_total[1m])) / sum(rate(otelcol_x_total[1m]))", None),
        ('max_over_time(otelcol_x[5m:1m]) + on() max_over_time(up{job="shop"}[5m:1m])', None),
        ('up{job="otel-collector"} or up{job="shop"}', None),
        ("up", None),
        ("vector(1)", None),
        ("sum(rate(otelcol_x_total[1m]", None),
    ],
    ids=[
        "prefix", "two-selectors", "job", "job-regex", "mixed", "mixed-other-first",
        "mixed-subquery", "mixed-jobs", "other", "no-selector", "syntax",
    ],
)  # fmt: skip
def test_owner_is_the_component_only_when_every_selector_is_its(
    expr: str, owner: str | None
) -> None:
    """A query belongs to the absent component only if each selector is its (prefix or job)."""
    assert COLLECTOR.owner(expr) == owner


def test_named_component_with_own_prefixes() -> None:
    """--absent NAME=PREFIX,PREFIX gives a component the check does not know its prefixes."""
    absent = parse_absent(["beyla=beyla_,ebpf_"])
    assert absent.owner("sum(rate(ebpf_calls_total[1m])) + sum(beyla_up)") == "beyla"
    assert parse_absent(["grafana"]).owner("grafana_build_info") == "grafana"


@pytest.mark.parametrize("value", ["", "=otelcol_", "mine="], ids=["empty", "no-name", "no-prefix"])
def test_bad_absent_value_is_refused(value: str) -> None:
    """An --absent value without a name, or with an empty prefix list, is bad input."""
    with pytest.raises(CheckInputError, match="--absent"):
        parse_absent([value])


def test_absent_component_panels_are_not_checkable_with_the_reason() -> None:
    """Panels of only the collector's metrics are named not checkable with why; mixed ones run."""
    run = check("--absent", "otel-collector", "--json")
    received = run.panel("Collector spans received")
    assert received["status"] == "unchecked", received
    assert all(t["status"] == "unchecked" for t in received["targets"])
    assert (
        "reads only otel-collector's metrics (otelcol_* or job='otel-collector')"
        in (received["targets"][0]["detail"])
    )
    assert run.panel("Collector up")["status"] == "unchecked"
    # A query that mixes the collector's metrics with Tempo's is checked (and fails here).
    assert run.panel("Spans in and out")["status"] == "error"
    assert run.code == 1
    assert len(run.report["unchecked"]) == 2, run.report["unchecked"]


def test_without_absent_the_same_panels_are_checked() -> None:
    """Without --absent nothing is skipped: every query is sent (and fails to connect here)."""
    run = check("--json")
    assert {p["status"] for d in run.report["dashboards"] for p in d["panels"]} == {"error"}


def test_text_report_names_absent_panels_with_the_reason() -> None:
    """The text report lists each not-checkable panel by title, with the reason."""
    run = check("--absent", "otel-collector")
    listed = [line for line in run.stdout.splitlines() if "does not run here" in line]
    assert any('"Collector spans received"' in line for line in listed), run.stdout
    assert any('"Collector up"' in line for line in listed), run.stdout
    assert not any('"Spans in and out"' in line for line in listed), run.stdout


def test_absent_with_grafana_is_bad_input() -> None:
    """--absent with --grafana exits 2: through Grafana every compose component runs."""
    run = run_cli("check", str(DASHBOARD), "--grafana", NOWHERE, "--absent", "otel-collector")
    assert run.code == 2
    assert "--absent is for direct mode" in run.stderr
