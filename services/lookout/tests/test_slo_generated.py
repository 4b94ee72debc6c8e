"""`lookout slo build|verify`: the committed files are what slos.yaml generates, and stay so."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from slo_support import ROOT, SLO_TEXT, copy_repo

from lookout_stack.cli import main
from lookout_stack.slo import generate, parse_slos
from lookout_stack.slo.command import RULES_FILE, SLO_FILE, TESTS_FILE, Generated
from stack_support import require_binary


def _rules(text: str) -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def _objective_expr(text: str, service: str, slo: str) -> str:
    for rule in _rules(text):
        labels = rule.get("labels") or {}
        if rule.get("record") == "slo:objective:ratio" and labels == {
            "service": service,
            "slo": slo,
        }:
            return str(rule["expr"])
    raise AssertionError(f"no slo:objective:ratio for {service} {slo}")


@pytest.mark.parametrize("generated", generate(ROOT), ids=lambda g: str(g.path))
def test_the_committed_file_is_what_slos_yaml_generates(generated: Generated) -> None:
    """Regenerating from slo/slos.yaml gives the committed bytes (else: lookout slo build)."""
    committed = (ROOT / generated.path).read_text(encoding="utf-8")
    assert committed == generated.text, (
        f"{generated.path} is stale: run `uv run lookout slo build` and commit it"
    )


def test_verify_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    """`lookout slo verify` exits 0 on the committed files and says each is up to date."""
    assert main(["slo", "--root", str(ROOT), "verify"]) == 0
    out = capsys.readouterr().out
    assert f"{RULES_FILE}: up to date" in out and f"{TESTS_FILE}: up to date" in out


def test_verify_exits_1_on_a_stale_file_and_build_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand edit of the generated rules makes verify exit 1 naming the file; build rewrites it."""
    root = copy_repo(tmp_path)
    rules = root / RULES_FILE
    rules.write_text(rules.read_text(encoding="utf-8").replace("> 14.4", "> 20"), encoding="utf-8")
    assert main(["slo", "--root", str(root), "verify", "--diff"]) == 1
    captured = capsys.readouterr()
    assert f"{RULES_FILE}: stale" in captured.err and "run `lookout slo build`" in captured.err
    assert "-          (slo:burn_rate:rate1h > 20" in captured.out  # the diff shows the edit
    assert main(["slo", "--root", str(root), "build"]) == 0
    assert rules.read_text(encoding="utf-8") == (ROOT / RULES_FILE).read_text(encoding="utf-8")
    assert main(["slo", "--root", str(root), "verify"]) == 0


def test_verify_exits_1_when_slos_yaml_changed_but_not_the_rules(tmp_path: Path) -> None:
    """Editing a target without rebuilding is caught: the committed rules no longer match."""
    root = copy_repo(tmp_path, SLO_TEXT.replace("objective: 99.9}", "objective: 99.5}", 1))
    assert main(["slo", "--root", str(root), "verify"]) == 1


def test_bad_slos_yaml_exits_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid SLO file makes build and verify exit 2, the error naming file, line and field."""
    root = copy_repo(tmp_path, SLO_TEXT.replace("window: 30d", "window: thirty days"))
    line = SLO_TEXT[: SLO_TEXT.index("window: 30d")].count("\n") + 1
    for action in ("build", "verify"):
        assert main(["slo", "--root", str(root), action]) == 2
        assert (
            f"{SLO_FILE}:{line}: window: 'thirty days' is not a duration" in capsys.readouterr().err
        )
    assert (root / RULES_FILE).read_text(encoding="utf-8") == (ROOT / RULES_FILE).read_text(
        encoding="utf-8"
    ), "a failed build must leave the generated files alone"


def test_no_slo_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run outside the repository without --root: exit 2 naming the file it looked for."""
    assert main(["slo", "--root", str(tmp_path), "verify"]) == 2
    assert f"no {SLO_FILE}" in capsys.readouterr().err


def test_an_objective_change_changes_the_thresholds(tmp_path: Path) -> None:
    """99.9 -> 99.5 for shop availability: its objective series, and the tests' inputs, follow."""
    before = parse_slos(SLO_TEXT)
    old = next(s for s in before.slos if (s.service, s.name) == ("shop", "availability"))
    text = SLO_TEXT.replace(f"objective: {old.objective_percent}}}", "objective: 99.5}", 1)
    root = copy_repo(tmp_path, text)
    assert main(["slo", "--root", str(root), "build"]) == 0
    rules = (root / RULES_FILE).read_text(encoding="utf-8")
    assert _objective_expr(rules, "shop", "availability") == "vector(0.995)"
    assert _objective_expr(rules, "payments", "availability") == f"vector({old.objective})"
    # The budget is 5 times larger, so the fast scenario's bad events per minute are too.
    before_step = _fast_bad_step(ROOT / TESTS_FILE, "shop")
    after_step = _fast_bad_step(root / TESTS_FILE, "shop")
    assert after_step == before_step * 5, (before_step, after_step)
    assert _fast_bad_step(root / TESTS_FILE, "payments") == before_step


def _fast_bad_step(path: Path, job: str) -> float:
    """Return the bad events a minute of ``job``'s 5xx series in the first (fast) test."""
    first = yaml.safe_load(path.read_text(encoding="utf-8"))["tests"][0]
    for item in first["input_series"]:
        if f'job="{job}"' in item["series"] and 'status_code="5' in item["series"]:
            return float(str(item["values"]).split()[0].split("+")[1].split("x")[0])
    raise AssertionError(f"no 5xx series for {job} in {path}")


def test_a_burn_rate_change_changes_the_alert(tmp_path: Path) -> None:
    """A page burn rate edited in slos.yaml is the one the generated alert compares with."""
    root = copy_repo(tmp_path, SLO_TEXT.replace("burn_rate: 14.4}", "burn_rate: 10}", 1))
    assert main(["slo", "--root", str(root), "build"]) == 0
    fast = next(
        rule
        for rule in _rules((root / RULES_FILE).read_text(encoding="utf-8"))
        if rule.get("alert") == "SLOErrorBudgetFastBurn"
    )
    assert "slo:burn_rate:rate1h > 10 and slo:burn_rate:rate5m > 10" in str(fast["expr"])


def test_promtool_passes_the_tests_generated_for_changed_targets(tmp_path: Path) -> None:
    """With other objectives and burn rates, the regenerated rules pass their regenerated tests."""
    text = (
        SLO_TEXT.replace("objective: 99.9}", "objective: 99.5}", 1)
        .replace("objective: 95,", "objective: 97.5,", 1)
        .replace("burn_rate: 6}", "burn_rate: 5}", 1)
    )
    root = copy_repo(tmp_path, text)
    assert main(["slo", "--root", str(root), "build"]) == 0
    promtool = str(require_binary("promtool"))
    for args in (["check", "rules", str(RULES_FILE)], ["test", "rules", str(TESTS_FILE)]):
        result = subprocess.run(
            [promtool, *args], capture_output=True, text=True, timeout=120, check=False, cwd=root
        )
        assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
