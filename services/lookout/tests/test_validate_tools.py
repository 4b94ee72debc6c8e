"""`lookout validate`'s tool finder and tool-output reader."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lookout_stack.validate.model import CheckResult
from lookout_stack.validate.runner import run_one
from lookout_stack.validate.tools import BackendMissing, findings_from, shared_candidates


def test_shared_backends_are_looked_for_beside_the_clones_origin(tmp_path: Path) -> None:
    """A clone elsewhere (as CI makes) finds ../shared/backends beside the checkout it came from."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not on PATH")
    origin, clone = tmp_path / "work" / "repo", tmp_path / "ci" / "clone"
    origin.mkdir(parents=True)
    clone.mkdir(parents=True)
    subprocess.run([git, "init", "-q", str(clone)], check=True, timeout=30)
    subprocess.run(
        [git, "-C", str(clone), "remote", "add", "origin", str(origin)], check=True, timeout=30
    )
    assert shared_candidates(clone) == [
        tmp_path / "ci" / "shared" / "backends",
        (tmp_path / "work" / "shared" / "backends").resolve(),
    ]


def test_a_folder_without_git_looks_only_beside_itself(tmp_path: Path) -> None:
    """A tree that is no git checkout (a rendered folder) looks for ../shared/backends only."""
    assert shared_candidates(tmp_path / "tree") == [tmp_path / "shared" / "backends"]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            'Checking r.yml\n  FAILED:\nr.yml: 5:11: group "g", rule 1: parse error\n',
            [("r.yml:5", 'group "g", rule 1: parse error')],
        ),
        (
            "failed parsing config: r.yml: yaml: unmarshal errors:\n  line 25: field x not found\n",
            [("r.yml:25", "field x not found")],
        ),
        (
            '  FAILED: parsing YAML file r.yml: not a valid duration string: "15x"\n',
            [("r.yml", 'parsing YAML file r.yml: not a valid duration string: "15x"')],
        ),
        ('level=info msg="config is valid"\n', []),
    ],
    ids=["promtool-line-column", "go-yaml-line", "no-line", "info-only"],
)
def test_tool_output_becomes_findings_at_file_and_line(
    output: str, expected: list[tuple[str, str]]
) -> None:
    """Each problem line a tool prints becomes file:line and message; banners are dropped."""
    assert [(f.where, f.message) for f in findings_from(output, "r.yml")] == expected


class _NeedsLoki:
    """A check whose backend binary is nowhere to be found."""

    name = "needs-loki"

    def run(self, root: Path) -> CheckResult:
        raise BackendMissing("loki is not on PATH")


@pytest.mark.parametrize(
    ("ci", "status"), [("true", "failed"), ("", "skipped")], ids=["in-ci", "elsewhere"]
)
def test_missing_backends_fail_in_ci_and_are_skipped_with_the_reason_elsewhere(
    ci: str, status: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the real Loki/Tempo, CI=true fails the check; elsewhere it is skipped, saying why."""
    monkeypatch.setenv("CI", ci)
    result = run_one(_NeedsLoki(), tmp_path)
    assert result.status == status
    said = result.detail + " ".join(f.message for f in result.findings)
    assert "loki is not on PATH" in said
