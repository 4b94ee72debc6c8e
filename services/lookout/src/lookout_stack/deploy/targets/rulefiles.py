"""Rule files in a folder that Prometheus (or Loki's ruler) reads, reloaded after writing.

The objects are files (``<directory>/<file>.yml``, Loki's keep their tenant sub-folder). Each
change is one atomic write or delete (see ``files``); ``finish`` then asks the reader to
reload and checks that it took the files:

* Prometheus: ``POST /-/reload`` (needs ``--web.enable-lifecycle``), then
  ``GET /api/v1/rules`` must list every rendered group, by group name and file name (the
  folder may be mounted elsewhere in the reader's container, so not by full path).
  https://prometheus.io/docs/prometheus/latest/management_api/#reload and
  https://prometheus.io/docs/prometheus/latest/querying/api/#rules
* A refused reload (a file that does not load) puts the previous files back, reloads those,
  and raises DeployError naming the files written and the reader's answer: Prometheus keeps
  running the rules it had, and the folder again matches them.
* Loki's ruler has no reload endpoint; it re-reads its folder every ``ruler.poll_interval``.
  With ``reload_url`` unset nothing is called (the reader polls).
* When the folder already holds the rendered files, ``plan`` also asks Prometheus what it has
  loaded: an apply killed between the writes and the reload leaves the files current and the
  reader on the old rules, so a reload change is planned when, for the rendered files, the
  group names per file or the rules of a group (type and name, in order) differ, or a group
  is still loaded from a file of the folder that is gone. Expressions are not compared:
  Prometheus answers them re-printed (``sum(x) by (job)`` as ``sum by (job) (x)``), so an
  apply killed after changing only an expression is not seen. A reader that cannot be asked
  (down, not Prometheus) plans the file changes alone, as before; the apply's reload then
  says it could not be reached.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

import httpx

from lookout_stack.deploy.model import Change, DeployError, RuleFiles
from lookout_stack.deploy.targets.files import OwnedDirectory
from lookout_stack.deploy.targets.reload import (
    RELOAD_TIMEOUT,
    api_base,
    post_reload,
    reload_or_restore,
)
from lookout_stack.deploy.targets.rendered import rule_groups
from lookout_stack.deploy.targets.textdiff import dump_yaml, unified

__all__ = ["RuleFilesTarget"]


class RuleFilesTarget:
    """The rendered rule files, written into a reader's folder and reloaded."""

    def __init__(
        self,
        section: RuleFiles,
        files: dict[str, str],
        origin: Path,
        reader: Literal["prometheus", "loki"],
    ) -> None:
        self.name = f"{reader} rules (files in {section.directory})"
        self._section = section
        self._files = files
        self._reader = reader
        # Parsing now fails early, naming the file, before anything is written.
        self._groups = rule_groups(files, origin)
        self._folder = OwnedDirectory(section.directory, self.name)

    def plan(self) -> list[Change]:
        """Return the file writes and deletes, or a reload when only the reader is behind."""
        changes = self._folder.plan(
            self._files, lambda rel: f"rule file {rel} in {self._section.directory}"
        )
        url = self._section.reload_url
        if changes or url is None or self._reader != "prometheus":
            return changes
        loaded = self._loaded(api_base(str(url)))
        if loaded is None:
            return []
        desired = self._summary()
        if loaded == desired:
            return []
        return [
            Change(
                target=self.name,
                kind="update",
                object="reload prometheus (running rules differ from the files)",
                diff=unified(dump_yaml(loaded), dump_yaml(desired), "loaded-rule-groups"),
                apply=lambda: self._reload(str(url)),
            )
        ]

    def _summary(self) -> dict[str, dict[str, list[str]]]:
        """Return file -> group -> ["alerting NAME" | "recording NAME"] of the rendered files."""
        summary: dict[str, dict[str, list[str]]] = {}
        for group in self._groups:
            rules = group.body.get("rules") or []
            summary.setdefault(Path(group.file).name, {})[group.name] = [
                f"alerting {r['alert']}" if "alert" in r else f"recording {r.get('record')}"
                for r in rules
            ]
        return summary

    def _loaded(self, base: str) -> dict[str, dict[str, list[str]]] | None:
        """Return the same summary of what Prometheus runs from this folder; None if unknown.

        Only groups of the rendered files count, and groups of files gone from the folder
        (an apply killed after a delete): other files the reader loads are not the deploy's.
        """
        try:
            response = httpx.get(f"{base}/api/v1/rules", timeout=RELOAD_TIMEOUT)
            response.raise_for_status()
            listed = response.json()["data"]["groups"]
            groups = [(str(g["file"]), str(g["name"]), g["rules"]) for g in listed]
            rules = {(f, n): [f"{r['type']} {r['name']}" for r in rs] for f, n, rs in groups}
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        names = {Path(rel).name for rel in self._files}
        # The folder as the reader sees it (it may be mounted elsewhere in its container).
        folders = {str(Path(f).parent) for f, _, _ in groups if Path(f).name in names}
        summary: dict[str, dict[str, list[str]]] = {}
        for file, name, _ in groups:
            path = Path(file)
            gone = (
                str(path.parent) in folders and not (self._section.directory / path.name).exists()
            )
            if path.name in names or gone:
                summary.setdefault(path.name, {})[name] = rules[(file, name)]
        return summary

    def _reload(self, url: str) -> None:
        """Reload Prometheus so it runs the files already in the folder, then check it does."""
        error = post_reload(url)
        if error is not None:
            msg = (
                f"{self.name}: the folder holds the rendered files but Prometheus runs older"
                f" rules, and reloading failed: {error}. Check the files with"
                " `promtool check rules` and that the reader runs at reload_url."
            )
            raise DeployError(msg)
        base = api_base(url)
        self._verify(base)
        loaded, desired = self._loaded(base), self._summary()
        if loaded != desired:
            msg = (
                f"{self.name}: Prometheus reloaded but still runs other rules than the files:"
                f" {loaded} instead of {desired}"
            )
            raise DeployError(msg)

    def finish(self) -> None:
        """Reload the reader if a file changed (restoring the files if it refuses), then check."""
        url = self._section.reload_url
        prometheus = self._reader == "prometheus"
        check = "`promtool check rules`" if prometheus else "the ruler's log"
        written = [p.relative_to(self._section.directory).as_posix() for p in self._folder.touched]
        try:
            reloaded = reload_or_restore(self._folder, url, self.name, check)
        except DeployError as error:
            found = self._promtool_findings(written) if prometheus else ""
            # The same type: a ReloadRefused tells the apply report the files were put back.
            raise type(error)(f"{error}{found}") from None
        if reloaded and prometheus:
            self._verify(api_base(str(url)))

    def _promtool_findings(self, written: list[str]) -> str:
        """Say what ``promtool check rules`` finds in the refused files, when it is installed.

        Prometheus' reload answer only says that the rules did not load; the reason is in its
        log, which the deploy cannot read. promtool gives the same parser's verdict here.
        """
        promtool = shutil.which("promtool")
        refused = [r for r in written if r in self._files]
        if promtool is None or not refused:
            return ""
        findings = []
        with tempfile.TemporaryDirectory() as scratch:
            for relative in refused:
                path = Path(scratch) / Path(relative).name
                path.write_text(self._files[relative], encoding="utf-8")
                result = subprocess.run(  # noqa: S603 (promtool from PATH, fixed arguments)
                    [promtool, "check", "rules", str(path)],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                if result.returncode != 0:
                    text = " ".join(
                        (result.stdout + result.stderr).replace(scratch + "/", "").split()
                    )
                    findings.append(f"{relative}: {text}")
        return "\npromtool check rules: " + "; ".join(findings) if findings else ""

    def _verify(self, base: str) -> None:
        try:
            response = httpx.get(f"{base}/api/v1/rules", timeout=RELOAD_TIMEOUT)
            response.raise_for_status()
            listed = response.json()["data"]["groups"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            msg = f"{self.name}: GET /api/v1/rules after the reload failed: {error}"
            raise DeployError(msg) from None
        loaded = {(Path(g["file"]).name, g["name"]) for g in listed}
        missing = [
            f"{g.name} ({g.file})"
            for g in self._groups
            if (Path(g.file).name, g.name) not in loaded
        ]
        if missing:
            msg = (
                f"{self.name}: the reload succeeded but GET /api/v1/rules does not list"
                f" {', '.join(missing)}: does the reader's `rule_files` glob cover"
                f" {self._section.directory}?"
            )
            raise DeployError(msg)
