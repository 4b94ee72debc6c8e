"""Generated files match their sources: the dashboards (`lookout dashboards build`) and the SLO
rules and their tests (`lookout slo build`), rebuilt in memory and compared with the tree."""

from __future__ import annotations

from pathlib import Path

from lookout_stack.dashboards import OUTPUT_DIR, RuleError, build_all
from lookout_stack.slo.command import SLO_FILE, generate
from lookout_stack.slo.errors import SloError
from lookout_stack.validate.model import CheckResult, Finding
from lookout_stack.validate.tree import absent, outcome, skipped

__all__ = ["DASHBOARDS", "SLO", "DashboardsCurrent", "SloCurrent"]


class DashboardsCurrent:
    """grafana/dashboards/*.json is what the dashboard modules build, file for file."""

    name = "dashboards-current"

    def run(self, root: Path) -> CheckResult:
        """Rebuild the dashboards; a finding per file missing, stale or built by no module."""
        if reason := absent(root, str(OUTPUT_DIR), "prometheus/rules"):
            return skipped(self.name, reason)
        try:
            built = build_all(root)
        except RuleError as error:
            return outcome(self.name, "", [Finding("prometheus/rules", str(error))])
        folder = root / OUTPUT_DIR
        findings = []
        for uid, text in built.items():
            path = folder / f"{uid}.json"
            where = path.relative_to(root).as_posix()
            if not path.is_file():
                findings.append(Finding(where, "missing: run `lookout dashboards build`"))
            elif path.read_text(encoding="utf-8") != text:
                findings.append(
                    Finding(where, "differs from a fresh build: run `lookout dashboards build`")
                )
        expected = {f"{uid}.json" for uid in built}
        findings += [
            Finding(path.relative_to(root).as_posix(), "no dashboard module builds it")
            for path in sorted(folder.glob("*.json"))
            if path.name not in expected
        ]
        return outcome(self.name, f"{len(built)} dashboards", findings)


class SloCurrent:
    """prometheus/rules/slo.yml and prometheus/tests/slo.test.yml are what slo/slos.yaml makes."""

    name = "slo-current"

    def run(self, root: Path) -> CheckResult:
        """Regenerate from slo/slos.yaml; a finding per stale file, or per error in slos.yaml."""
        if reason := absent(root, str(SLO_FILE)):
            return skipped(self.name, reason)
        try:
            files = generate(root)
        except SloError as error:
            return outcome(self.name, "", [Finding(str(SLO_FILE), str(error))])
        findings = []
        for generated in files:
            target = root / generated.path
            current = target.read_text(encoding="utf-8") if target.is_file() else ""
            if current != generated.text:
                findings.append(
                    Finding(
                        generated.path.as_posix(),
                        f"stale (does not match {SLO_FILE}): run `lookout slo build`",
                    )
                )
        return outcome(self.name, f"{len(files)} files from {SLO_FILE}", findings)


DASHBOARDS = DashboardsCurrent()
SLO = SloCurrent()
