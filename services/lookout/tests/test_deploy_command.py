"""``lookout render|diff|apply --env``: the command's order, progress, failure report,
idempotence and output, with in-process targets that hold state (the real targets, HTTP
clients of Grafana, Mimir and Loki, have their own tests)."""

from __future__ import annotations

import difflib
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lookout_stack.deploy.command import order_targets
from lookout_stack.deploy.environment import Environment
from lookout_stack.deploy.model import Change, DeployError
from lookout_support import CliRun, run_cli

ROOT = Path(__file__).resolve().parents[3]
SECRET = "tok-3f9a7c-never-print-me"


@dataclass
class FakeTarget:
    """A target whose live state is a dict: plan() diffs it, a change's apply() edits it."""

    name: str
    desired: dict[str, str]
    live: dict[str, str] = field(default_factory=dict)
    fail_on: str | None = None
    failure: str = "HTTP 500 from the server"
    journal: list[str] = field(default_factory=list)

    def plan(self) -> list[Change]:
        """Return a change per object that differs (create, update, delete)."""
        changes = []
        for key in sorted(set(self.desired) | set(self.live)):
            want, have = self.desired.get(key), self.live.get(key)
            if want == have:
                continue
            kind = "create" if have is None else "delete" if want is None else "update"
            text = "".join(
                difflib.unified_diff(
                    [f"{have}\n"] if have is not None else [],
                    [f"{want}\n"] if want is not None else [],
                    f"{key} (live)",
                    f"{key} (rendered)",
                )
            )
            changes.append(Change(self.name, kind, key, text, self._applier(key, want)))
        return changes

    def _applier(self, key: str, want: str | None) -> Callable[[], None]:
        def apply() -> None:
            if key == self.fail_on:
                raise DeployError(f"{self.name}: {key}: {self.failure}")
            self.journal.append(f"apply {key}")
            if want is None:
                del self.live[key]
            else:
                self.live[key] = want

        return apply

    def finish(self) -> None:
        """Record the reload."""
        self.journal.append("finish")


@pytest.fixture
def targets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeTarget]]:
    """Install a ``lookout_stack.deploy.targets`` whose build_targets returns these fakes.

    Built out of order (dashboards first) so the command's ordering is what is tested.
    """
    fakes = [
        FakeTarget("grafana", {"dashboard lookout-overview": "v2", "datasource loki": "url2"}),
        FakeTarget("loki rules (loki)", {"rule group lookout/logs": "g1"}),
        FakeTarget("prometheus rules (mimir)", {"rule group lookout/slo": "s1"}, {"old": "x"}),
        FakeTarget("alertmanager (mimir)", {"alertmanager configuration": "c1"}),
    ]
    seen: list[Path] = []

    def build_targets(environment: Environment, rendered: Path) -> list[FakeTarget]:
        assert (rendered / "prometheus/rules/slo.yml").is_file()
        seen.append(rendered)
        return list(fakes)

    module = types.ModuleType("lookout_stack.deploy.targets")
    module.build_targets = build_targets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lookout_stack.deploy.targets", module)
    yield fakes


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write an environment whose Grafana token is in LOOKOUT_TEST_TOKEN (set to SECRET)."""
    monkeypatch.setenv("LOOKOUT_TEST_TOKEN", SECRET)
    path = tmp_path / "qa.yaml"
    path.write_text(
        "grafana:\n  url: https://grafana.qa\n  auth:\n    token: {env: LOOKOUT_TEST_TOKEN}\n"
        "retention:\n  metrics: 60d\n",
        encoding="utf-8",
    )
    return path


def _lookout(*args: str) -> CliRun:
    return run_cli(*args, "--root", str(ROOT))


def test_diff_prints_each_objects_change_and_exits_1(
    targets: list[FakeTarget], env_file: Path
) -> None:
    """diff shows a heading per target, +/~/- per object with its diff, and changes nothing."""
    run = _lookout("diff", "--env", str(env_file))
    assert run.code == 1, run.stderr
    assert "=== alertmanager (mimir)\n+ create alertmanager configuration\n" in run.stdout
    assert "- delete old\n" in run.stdout
    assert "+++ dashboard lookout-overview (rendered)" in run.stdout
    assert "6 change(s) on 4 target(s)" in run.stdout
    assert all(not t.journal for t in targets)


def test_apply_orders_targets_safely_with_progress(
    targets: list[FakeTarget], env_file: Path
) -> None:
    """Alertmanager, then rules, then Grafana; datasources before dashboards; deletes last."""
    run = _lookout("apply", "--env", str(env_file))
    assert run.code == 0, run.stderr
    progress = [line for line in run.stderr.splitlines() if line.startswith("[")]
    assert progress == [
        "[1/6] alertmanager (mimir): create alertmanager configuration ... ok",
        "[2/6] prometheus rules (mimir): create rule group lookout/slo ... ok",
        "[3/6] prometheus rules (mimir): delete old ... ok",
        "[4/6] loki rules (loki): create rule group lookout/logs ... ok",
        "[5/6] grafana: create datasource loki ... ok",
        "[6/6] grafana: create dashboard lookout-overview ... ok",
    ]
    for target in targets:
        assert target.live == target.desired
        assert target.journal[-1] == "finish"


def test_a_second_apply_changes_nothing(targets: list[FakeTarget], env_file: Path) -> None:
    """After one apply, apply says in sync and exits 0, and diff exits 0."""
    assert _lookout("apply", "--env", str(env_file)).code == 0
    journals = [list(t.journal) for t in targets]
    again = _lookout("apply", "--env", str(env_file))
    assert again.code == 0
    assert again.stdout.strip() == "in sync: nothing to apply"
    assert [t.journal for t in targets] == journals
    diff = _lookout("diff", "--env", str(env_file))
    assert diff.code == 0
    assert "in sync: nothing to change" in diff.stdout


def test_apply_stops_at_the_first_failure_and_says_what_was_applied(
    targets: list[FakeTarget], env_file: Path
) -> None:
    """A failing change stops apply: applied, failed and not applied are listed, exit 1."""
    rules = next(t for t in targets if t.name.startswith("prometheus"))
    rules.fail_on = "old"
    run = _lookout("apply", "--env", str(env_file))
    assert run.code == 1
    report = run.stderr[run.stderr.index("lookout apply: stopped") :]
    assert report.splitlines()[:9] == [
        "lookout apply: stopped at the first failure on qa",
        "applied (2):",
        "  alertmanager (mimir): create alertmanager configuration",
        "  prometheus rules (mimir): create rule group lookout/slo",
        "failed: [3/6] prometheus rules (mimir): delete old: prometheus rules (mimir): old: "
        "HTTP 500 from the server",
        "not applied (3):",
        "  loki rules (loki): create rule group lookout/logs",
        "  grafana: create datasource loki",
        "  grafana: create dashboard lookout-overview",
    ]
    assert "next: fix the cause above, then `lookout diff --env qa`" in report
    assert "finish" not in rules.journal
    assert all(not t.journal for t in targets if t.name.startswith(("loki", "grafana")))


def test_dry_run_is_diff(targets: list[FakeTarget], env_file: Path) -> None:
    """apply --dry-run prints diff's output, exits with diff's code, applies nothing."""
    dry = _lookout("apply", "--env", str(env_file), "--dry-run")
    diff = _lookout("diff", "--env", str(env_file))
    assert (dry.code, dry.stdout) == (diff.code, diff.stdout)
    assert all(not t.journal for t in targets)


def test_secrets_are_never_printed(targets: list[FakeTarget], env_file: Path) -> None:
    """A secret in a diff or an error message is shown as <hidden>."""
    grafana = next(t for t in targets if t.name == "grafana")
    grafana.desired["datasource loki"] = f"Bearer {SECRET}"
    grafana.fail_on = "datasource loki"
    grafana.failure = f"401 for token {SECRET}"
    diff = _lookout("diff", "--env", str(env_file))
    apply = _lookout("apply", "--env", str(env_file))
    for run in (diff, apply):
        assert SECRET not in run.stdout + run.stderr
    assert "Bearer <hidden>" in diff.stdout
    assert "401 for token <hidden>" in apply.stderr


def test_a_target_that_cannot_be_read_exits_1_naming_it(
    targets: list[FakeTarget], env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan() failure names the target and stops before anything is applied."""

    def broken() -> list[Change]:
        raise DeployError("connection refused")

    monkeypatch.setattr(targets[1], "plan", broken)
    run = _lookout("apply", "--env", str(env_file))
    assert run.code == 1
    assert "loki rules (loki): cannot read the live state: connection refused" in run.stderr
    assert all(not t.journal for t in targets)


def test_unreadable_target_is_named_once(
    targets: list[FakeTarget], env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target's own error, which starts with its name, is printed with the name once."""

    def broken() -> list[Change]:
        raise DeployError("loki rules (loki): GET /loki/api/v1/rules failed: ConnectError")

    monkeypatch.setattr(targets[1], "plan", broken)
    run = _lookout("diff", "--env", str(env_file))
    assert run.code == 1
    assert run.stderr.splitlines()[-1] == (
        "lookout diff: loki rules (loki): cannot read the live state:"
        " GET /loki/api/v1/rules failed: ConnectError"
    )


def test_metrics_retention_note_is_printed(targets: list[FakeTarget], env_file: Path) -> None:
    """diff says where the metrics retention is set, since no file holds it."""
    run = _lookout("diff", "--env", str(env_file))
    assert "note: retention.metrics 60d is in no file" in run.stderr


def test_a_bad_environment_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    """An invalid environment file stops diff with exit 2 and file:line: field."""
    path = tmp_path / "bad.yaml"
    path.write_text("grafana:\n  url: http://g\n  auth: {token: inline-secret}\n", encoding="utf-8")
    run = _lookout("diff", "--env", str(path))
    assert run.code == 2
    assert ":3: grafana.auth.token: a secret goes by reference" in run.stderr
    assert "inline-secret" not in run.stderr


def test_order_puts_unknown_targets_last() -> None:
    """Targets sort by their name's head in the safe order; unknown names go last."""
    names = [
        "grafana",
        "other",
        "loki rules (files in /srv/alertmanager/loki)",
        "alertmanager (file am.yml)",
        "prometheus rules (mimir ruler API)",
    ]
    ordered = order_targets([FakeTarget(n, {}) for n in names])
    assert [t.name for t in ordered] == [
        "alertmanager (file am.yml)",
        "prometheus rules (mimir ruler API)",
        "loki rules (files in /srv/alertmanager/loki)",
        "grafana",
        "other",
    ]


# --- render ----------------------------------------------------------------------------------


def test_render_writes_the_folder_and_lists_what_it_wrote(tmp_path: Path, env_file: Path) -> None:
    """render writes the files, prints each path, and render.json."""
    out = tmp_path / "rendered"
    run = _lookout("render", "--env", str(env_file), "--out", str(out))
    assert run.code == 0, run.stderr
    assert f"{out}/prometheus/rules/slo.yml" in run.stdout.splitlines()
    assert (out / "render.json").is_file()
    assert "lookout render: wrote" in run.stderr


def test_render_refuses_a_non_empty_folder_unless_forced(tmp_path: Path, env_file: Path) -> None:
    """A folder with files is refused (exit 2); --force replaces a previous render."""
    out = tmp_path / "rendered"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    refused = _lookout("render", "--env", str(env_file), "--out", str(out))
    assert refused.code == 2
    assert "is not empty" in refused.stderr
    assert _lookout("render", "--env", str(env_file), "--out", str(out), "--force").code == 0
    assert (out / "notes.txt").is_file()
    (out / "stale.yml").write_text("old", encoding="utf-8")
    assert _lookout("render", "--env", str(env_file), "--out", str(out), "--force").code == 0
    assert not (out / "stale.yml").exists()


def test_every_missing_credential_is_named_before_any_target_is_read(
    targets: list[FakeTarget], env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset variable behind a reference stops diff with exit 2 naming field and variable."""
    monkeypatch.delenv("LOOKOUT_TEST_TOKEN")
    run = _lookout("diff", "--env", str(env_file))
    assert run.code == 2
    assert "grafana.auth.token: environment variable LOOKOUT_TEST_TOKEN is not set" in run.stderr
    assert "===" not in run.stdout


def test_changes_a_target_rolled_back_are_not_reported_as_applied(
    targets: list[FakeTarget], env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a target's finish puts its files back (a refused reload), its changes are listed
    as rolled back under "not applied", not under "applied"."""

    class Restored(DeployError):
        restored = True

    rules = next(t for t in targets if t.name.startswith("prometheus"))

    def refuse() -> None:
        raise Restored("prometheus rules (mimir): the reader refused the new files")

    monkeypatch.setattr(rules, "finish", refuse)
    run = _lookout("apply", "--env", str(env_file))
    assert run.code == 1
    report = run.stderr[run.stderr.index("lookout apply: stopped") :]
    assert report.splitlines()[:8] == [
        "lookout apply: stopped at the first failure on qa",
        "applied (1):",
        "  alertmanager (mimir): create alertmanager configuration",
        "failed: prometheus rules (mimir): finishing (reload) after its changes: "
        "prometheus rules (mimir): the reader refused the new files",
        "not applied (5):",
        "  prometheus rules (mimir): create rule group lookout/slo (rolled back)",
        "  prometheus rules (mimir): delete old (rolled back)",
        "  loki rules (loki): create rule group lookout/logs",
    ]


def test_an_environment_given_by_path_is_named_by_its_path(tmp_path: Path) -> None:
    """An overlay error of an environment given as a path names that path, not a file under
    deploy/environments that does not exist."""
    path = tmp_path / "qa.yaml"
    path.write_text(
        "alert_thresholds:\n  - alert: NoSuchAlert\n    severity: warning\n    value: 1\n",
        encoding="utf-8",
    )
    run = _lookout("render", "--env", str(path), "--out", str(tmp_path / "out"))
    assert run.code == 2
    assert f"{path}: alert_thresholds[0] (NoSuchAlert, warning)" in run.stderr
    assert "deploy/environments/qa.yaml" not in run.stderr


def test_render_refuses_an_slo_threshold_that_is_not_a_bucket_boundary(tmp_path: Path) -> None:
    """An overlay threshold off the histogram's buckets stops render with exit 2, naming the
    environment file, line and field and the valid boundaries, and writes nothing."""
    path = tmp_path / "qa.yaml"
    path.write_text("slos:\n  payments:\n    latency: {threshold: 7s}\n", encoding="utf-8")
    out = tmp_path / "out"
    run = _lookout("render", "--env", str(path), "--out", str(out))
    assert run.code == 2
    assert f"{path}:3: slos.payments.latency.threshold: 7s is not a bucket boundary" in run.stderr
    assert "use one of: 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 300ms, 500ms, 1s" in run.stderr
    assert not out.exists()


def test_a_forced_render_that_fails_keeps_the_previous_render(
    tmp_path: Path, env_file: Path
) -> None:
    """render --force over a previous render, with an overlay that does not fit, exits 2 and
    leaves the previous render as it was (it is replaced only by a render that succeeded)."""
    out = tmp_path / "rendered"
    assert _lookout("render", "--env", str(env_file), "--out", str(out)).code == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "alert_thresholds:\n  - alert: NoSuchAlert\n    severity: warning\n    value: 1\n",
        encoding="utf-8",
    )
    run = _lookout("render", "--env", str(bad), "--out", str(out), "--force")
    assert run.code == 2
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
