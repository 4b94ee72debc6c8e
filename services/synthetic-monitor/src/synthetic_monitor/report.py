"""Reports of a ``run``: readable text, JSON, or JUnit XML (one test case per journey)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from synthetic_monitor.results import RunResult

__all__ = ["render_json", "render_junit", "render_text"]

_MARK = {"success": "PASS", "flaky": "FLAKY", "failure": "FAIL"}


def render_text(results: Sequence[RunResult]) -> str:
    """Return a report a person reads: one block per journey, a line per step, a summary."""
    lines: list[str] = []
    for result in results:
        retry = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        lines.append(
            f"{_MARK[result.outcome]:5} {result.journey}  "
            f"({result.duration_seconds * 1000:.0f} ms{retry}, trace {result.trace_id})"
        )
        if result.error:
            lines.append(f"      error: {result.error}")
        for step in result.steps:
            mark = "skip" if step.skipped else ("ok" if step.success else "FAIL")
            role = "cleanup " if step.cleanup else ""
            status = f" HTTP {step.status_code}" if step.status_code is not None else ""
            lines.append(
                f"      {mark:4} {role}{step.name}{status} {step.duration_seconds * 1000:.0f} ms"
            )
            if not step.success:
                lines.append(f"           {step.summary()}")
    passed = sum(1 for r in results if r.success)
    flaky = sum(1 for r in results if r.outcome == "flaky")
    failed = len(results) - passed
    lines.append("")
    lines.append(
        f"{len(results)} journeys: {passed} passed ({flaky} only after a retry), {failed} failed"
    )
    return "\n".join(lines) + "\n"


def render_json(results: Sequence[RunResult]) -> str:
    """Return every result as JSON (``{"results": [...], "success": bool}``)."""
    data = {
        "success": all(r.success for r in results),
        "results": [r.to_dict() for r in results],
    }
    return json.dumps(data, indent=2) + "\n"


def render_junit(results: Sequence[RunResult]) -> str:
    """Return JUnit XML: a test case per journey, a failure element naming the step."""
    failures = sum(1 for r in results if not r.success)
    suite = ET.Element(
        "testsuite",
        name="synthetic-monitor",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{sum(r.duration_seconds for r in results):.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"synthetic.{result.kind}",
            name=result.journey,
            time=f"{result.duration_seconds:.3f}",
        )
        if not result.success:
            failure = ET.SubElement(case, "failure", message=result.failure_reason())
            failure.text = render_text([result])
        elif result.outcome == "flaky":
            out = ET.SubElement(case, "system-out")
            out.text = f"passed only after {result.attempts} attempts (flaky)"
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="trace_id", value=result.trace_id)
        ET.SubElement(props, "property", name="attempts", value=str(result.attempts))
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
