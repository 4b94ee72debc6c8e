"""`lookout validate`: the repo validates clean; --only, --skip, missing tools, JSON, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from validate_support import ROOT, copy_tree, edit

from lookout_stack.validate.checks import CHECKS
from lookout_support import run_cli
from stack_support import require_binary

#: The checks that need no program besides Python (so they run in the unit tier).
PYTHON_ONLY = [
    "compose-schema",
    "compose-rules",
    "stack-wiring",
    "collector-keys",
    "grafana-keys",
    "dashboard-lint",
    "alert-conventions",
    "dashboards-current",
    "slo-current",
    "yamllint",
    "alertmanager-coverage",
    "scale-out-compose",
    "kubernetes-manifests",
]


def _only(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--only", name)]


@pytest.mark.integration
def test_the_repo_validates_clean() -> None:
    """Every check passes on the repository itself; none is skipped, and it exits 0."""
    for program in ("promtool", "amtool", "loki", "tempo"):
        require_binary(program)
    run = run_cli("validate", "--root", str(ROOT), "--json")
    assert run.code == 0, run.stdout
    statuses = {check["name"]: check["status"] for check in run.report["checks"]}
    assert statuses == dict.fromkeys(CHECKS, "passed")
    assert run.report["status"] == "passed"


def test_python_only_checks_pass_on_the_repo_and_print_one_table() -> None:
    """The table lists each check once with its status; progress goes to stderr, per check."""
    run = run_cli("validate", "--root", str(ROOT), *_only(*PYTHON_ONLY))
    assert run.code == 0, run.stdout
    table = run.stdout.splitlines()
    assert table[0].split() == ["check", "status", "seconds", "detail"]
    rows = [line.split()[:2] for line in table[1 : 1 + len(PYTHON_ONLY)]]
    assert rows == [[name, "passed"] for name in CHECKS if name in PYTHON_ONLY]
    assert f"{len(PYTHON_ONLY)} passed, 0 failed, 0 skipped" in run.stdout
    assert "Problems:" not in run.stdout
    for name in PYTHON_ONLY:
        assert f"validate: {name}: running" in run.stderr
        assert f"validate: {name}: passed in " in run.stderr


def test_a_broken_tree_exits_1_and_lists_each_problem_as_file_line_message(tmp_path: Path) -> None:
    """A failing check exits 1 and its findings appear under Problems as file:line: message."""
    tree = copy_tree(tmp_path, ".yamllint.yaml", ".gitignore", "loki/loki.yaml")
    edit(tree, "loki/loki.yaml", "auth_enabled: false", "auth_enabled: false   ")
    run = run_cli("validate", "--root", str(tree), "--only", "yamllint")
    assert run.code == 1, run.stdout
    problems = run.stdout.split("Problems:\n", 1)[1].splitlines()
    line = next(
        i
        for i, text in enumerate((tree / "loki/loki.yaml").read_text().splitlines(), 1)
        if text.startswith("auth_enabled")
    )
    assert problems[0].startswith(f"  loki/loki.yaml:{line}:"), problems
    assert "trailing spaces" in problems[0] and problems[0].endswith("(yamllint)")


def test_a_partial_tree_skips_the_checks_whose_files_are_absent(tmp_path: Path) -> None:
    """--root of a tree with only some files skips the other checks by name, with the reason."""
    tree = copy_tree(tmp_path, "grafana/dashboards", "grafana/provisioning")
    run = run_cli("validate", "--root", str(tree), "--json")
    assert run.code == 0, run.stdout
    checks = {check["name"]: check for check in run.report["checks"]}
    assert list(checks) == list(CHECKS)
    ran = {"grafana-keys", "dashboard-lint"}
    assert {n for n, c in checks.items() if c["status"] == "passed"} == ran
    assert checks["compose-schema"]["status"] == "skipped"
    assert checks["compose-schema"]["detail"] == f"no docker-compose.yml in {tree.resolve()}"
    assert checks["dashboards-current"]["detail"].startswith("no prometheus/rules in ")
    assert checks["hadolint"]["detail"] == f"no Dockerfile in {tree.resolve()}"
    assert all(c["status"] == "skipped" for n, c in checks.items() if n not in ran)


def test_only_runs_just_the_named_checks_in_table_order() -> None:
    """--only (repeated) runs exactly those checks, in the table's order, not the given one."""
    run = run_cli(
        "validate", "--root", str(ROOT), "--json", *_only("dashboard-lint", "compose-rules")
    )
    assert run.code == 0
    assert [c["name"] for c in run.report["checks"]] == ["compose-rules", "dashboard-lint"]


def test_skip_reports_the_check_as_skipped_by_request() -> None:
    """--skip NAME does not run the check and reports it skipped by request."""
    run = run_cli(
        "validate",
        "--root",
        str(ROOT),
        "--json",
        *_only("compose-rules", "hadolint"),
        "--skip",
        "hadolint",
    )
    assert run.code == 0
    skipped = run.report["checks"][1]
    assert skipped == {
        "name": "hadolint",
        "status": "skipped",
        "detail": "skipped by request (--skip)",
        "findings": [],
        "seconds": 0.0,
    }
    assert "validate: hadolint: skipped by request" in run.stderr


def test_json_report_has_the_documented_shape(tmp_path: Path) -> None:
    """--json prints one object: root, status, seconds, and each check with its findings."""
    tree = copy_tree(tmp_path, "docker-compose.yml")
    edit(tree, "docker-compose.yml", "    mem_limit: 384m\n", "")
    run = run_cli("validate", "--root", str(tree), "--json", "--only", "compose-rules")
    assert run.code == 1
    report = run.report
    assert set(report) == {"root", "status", "seconds", "checks"}
    assert report["root"] == str(tree.resolve()) and report["status"] == "failed"
    (check,) = report["checks"]
    assert set(check) == {"name", "status", "detail", "seconds", "findings"}
    assert check["status"] == "failed"
    assert check["findings"][0]["where"].startswith("docker-compose.yml:")
    assert "memory limit" in check["findings"][0]["message"]


@pytest.mark.parametrize(
    ("check", "hint"),
    [
        ("promtool-rules", "apt-get install prometheus"),
        ("amtool-config", "apt-get install prometheus-alertmanager"),
    ],
)
def test_a_missing_tool_fails_the_check_with_its_install_command(
    check: str, hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the tool off PATH the check fails (never passes) and names how to install it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    run = run_cli("validate", "--root", str(ROOT), "--json", "--only", check)
    assert run.code == 1
    (result,) = run.report["checks"]
    assert result["status"] == "failed"
    assert hint in result["findings"][0]["message"]


def test_a_backends_dir_without_loki_fails_the_check_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOOKOUT_BACKENDS_DIR pointing at a folder without loki fails loki-config, naming it."""
    monkeypatch.setenv("LOOKOUT_BACKENDS_DIR", str(tmp_path))
    run = run_cli("validate", "--root", str(ROOT), "--json", "--only", "loki-config")
    assert run.code == 1
    message = run.report["checks"][0]["findings"][0]["message"]
    assert f"LOOKOUT_BACKENDS_DIR={tmp_path} has no executable loki" in message


@pytest.mark.parametrize("option", ["--only", "--skip"])
def test_an_unknown_check_name_exits_2_listing_the_known_ones(option: str) -> None:
    """A misspelt check name is bad input: exit 2, the name and the known names on stderr."""
    run = run_cli("validate", "--root", str(ROOT), option, "promtool-rulez")
    assert run.code == 2
    assert "unknown check(s) promtool-rulez" in run.stderr
    assert "promtool-rules" in run.stderr
    assert run.stdout == ""


def test_a_root_that_is_not_a_folder_exits_2(tmp_path: Path) -> None:
    """--root naming no folder exits 2 and says so."""
    run = run_cli("validate", "--root", str(tmp_path / "absent"))
    assert run.code == 2
    assert f"--root {tmp_path / 'absent'} is not a folder" in run.stderr


def test_no_repository_above_the_working_directory_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --root, a working directory outside any repository exits 2 with what to do."""
    monkeypatch.chdir(tmp_path)
    run = run_cli("validate")
    assert run.code == 2
    assert "no docker-compose.yml with a pyproject.toml" in run.stderr
    assert "pass --root DIR" in run.stderr


def test_the_repository_is_found_from_a_subfolder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --root, the repository holding the working directory is validated."""
    monkeypatch.chdir(ROOT / "prometheus" / "rules")
    run = run_cli("validate", "--json", "--only", "compose-rules")
    assert run.code == 0
    assert run.report["root"] == str(ROOT)


def test_a_file_that_does_not_parse_fails_its_checks_naming_the_line(tmp_path: Path) -> None:
    """Broken YAML is a failed check with file:line, not a traceback; the other checks still run."""
    tree = copy_tree(tmp_path, "docker-compose.yml")
    edit(tree, "docker-compose.yml", "    mem_limit: 384m\n", "    mem_limit: [384m\n")
    line = next(
        i
        for i, text in enumerate((tree / "docker-compose.yml").read_text().splitlines(), 1)
        if "[384m" in text
    )
    run = run_cli(
        "validate", "--root", str(tree), "--json", *_only("compose-rules", "stack-wiring")
    )
    assert run.code == 1
    for check in run.report["checks"]:
        assert check["status"] == "failed"
        (finding,) = check["findings"]
        assert finding["where"].startswith("docker-compose.yml:")
        assert int(finding["where"].split(":")[1]) >= line
        assert finding["message"].startswith("not valid YAML")
