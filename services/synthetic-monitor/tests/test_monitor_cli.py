"""`synthetic-monitor run`: one pass, a readable report, an exit code, JSON and JUnit output."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from monitor_support import target, write
from synthetic_monitor.cli import main


def config(tmp_path: Path, base: str, failing: bool = True) -> Path:
    """Write a file with a passing journey, a flaky check and (optionally) a failing one."""
    text = f"""
journeys:
  - name: browse
    steps:
      - {{name: list, url: "{base}/json", conditions: ["[BODY].items[0].id == 3"]}}
      - {{name: home, url: "{base}/ok"}}
checks:
  - {{name: wobbly, url: "{base}/flaky?key=cli-{failing}&fail=1", retries: 1, retry_delay: 0s}}
"""
    if failing:
        text += f"""  - {{name: broken, url: "{base}/status/502"}}\n"""
    return write(tmp_path / "ci.yml", text)


def test_run_prints_a_readable_report_and_exits_1_on_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each journey gets PASS/FLAKY/FAIL with its steps; any failure exits 1."""
    with target() as server:
        code = main(["run", str(config(tmp_path, server.url))])
    out = capsys.readouterr().out
    assert code == 1
    assert "PASS  browse" in out
    assert "FLAKY wobbly" in out and "after 2 attempts" in out
    assert "FAIL  broken" in out
    assert "[STATUS] (502) < 400" in out
    assert "3 journeys: 2 passed (1 only after a retry), 1 failed" in out


def test_run_exits_0_when_everything_passes(tmp_path: Path) -> None:
    """All journeys passing (a flaky pass included) is exit code 0."""
    with target() as server:
        assert main(["run", str(config(tmp_path, server.url, failing=False))]) == 0


def test_run_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json prints every result with outcome, attempts, steps and trace id."""
    with target() as server:
        main(["run", "--format", "json", str(config(tmp_path, server.url))])
    data = json.loads(capsys.readouterr().out)
    results = {r["journey"]: r for r in data["results"]}
    assert data["success"] is False
    assert results["wobbly"]["outcome"] == "flaky" and results["wobbly"]["attempts"] == 2
    assert results["broken"]["failing_step"] == "check"
    assert len(results["browse"]["trace_id"]) == 32


def test_run_writes_junit_xml_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format junit --output FILE writes a test case per journey; stdout keeps the text."""
    report = tmp_path / "junit.xml"
    with target() as server:
        main(
            ["run", "--format", "junit", "--output", str(report), str(config(tmp_path, server.url))]
        )
    suite = ET.parse(report).getroot().find("testsuite")  # noqa: S314 - our own report
    assert suite is not None
    assert suite.get("tests") == "3" and suite.get("failures") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    failure = cases["broken"].find("failure")
    assert failure is not None and "step 'check'" in (failure.get("message") or "")
    assert "FAIL  broken" in capsys.readouterr().out


def test_run_with_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A configuration error stops `run` before any request, with exit code 2."""
    bad = write(tmp_path / "bad.yml", "checks: [{name: a}]\n")
    assert main(["run", str(bad)]) == 2
    assert "bad.yml:1" in capsys.readouterr().err


def test_run_selects_journeys_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--journey limits the run; an unknown name is a usage error (exit 2)."""
    with target() as server:
        path = config(tmp_path, server.url)
        assert main(["run", "--journey", "browse", str(path)]) == 0
        assert "1 journeys" in capsys.readouterr().out
        assert main(["run", "--journey", "nope", str(path)]) == 2


def test_the_console_script_runs_as_a_process(tmp_path: Path) -> None:
    """`python -m synthetic_monitor run` works as CI would call it (exit code, stdout)."""
    with target() as server:
        done = subprocess.run(
            [sys.executable, "-m", "synthetic_monitor", "run", str(config(tmp_path, server.url))],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert "FAIL  broken" in done.stdout


def test_a_bad_log_level_or_exporter_is_a_usage_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--log-level takes DEBUG..ERROR (any case); an unsupported exporter exits 2 with a line."""
    path = write(tmp_path / "ok.yml", 'checks: [{name: a, url: "http://127.0.0.1:9/"}]\n')
    with pytest.raises(SystemExit) as stopped:
        main(["run", "--log-level", "foo", str(path)])
    assert stopped.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    assert main(["run", "--log-level", "info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthetic-monitor: OTEL_TRACES_EXPORTER='zipkin'")
    assert "Traceback" not in err
