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
from lookout_stack.deploy.targets.reload import RELOAD_TIMEOUT, api_base, reload_or_restore
from lookout_stack.deploy.targets.rendered import rule_groups

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
        """Return the file writes and deletes that make the folder hold the rendered files."""
        return self._folder.plan(
            self._files, lambda rel: f"rule file {rel} in {self._section.directory}"
        )

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
