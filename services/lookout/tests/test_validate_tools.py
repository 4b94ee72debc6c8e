"""`lookout validate`'s tool finder and tool-output reader."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lookout_stack.validate.tools import findings_from, shared_candidates


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
