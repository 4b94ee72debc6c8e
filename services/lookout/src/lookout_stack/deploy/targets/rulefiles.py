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

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from lookout_stack.deploy.model import Change, DeployError, RuleFiles
from lookout_stack.deploy.targets.files import OwnedDirectory
from lookout_stack.deploy.targets.httpapi import api_message
from lookout_stack.deploy.targets.rendered import rule_groups

__all__ = ["RuleFilesTarget"]

#: Seconds a reload may take: Prometheus re-reads every rule file before it answers.
RELOAD_TIMEOUT = 60.0


def _api_base(reload_url: str) -> str:
    parts = urlsplit(reload_url)
    path = parts.path.removesuffix("/-/reload")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


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
        """Reload the reader if a file changed; on refusal restore the files and raise."""
        touched = [p.name for p in self._folder.touched]
        if not touched or self._section.reload_url is None:
            self._folder.commit()
            return
        error = self._reload(self._section.reload_url)
        if error is not None:
            self._folder.rollback()
            restored = self._reload(self._section.reload_url)
            state = (
                "the previous files are back and loaded"
                if restored is None
                else f"the previous files are back, but reloading them failed too: {restored}"
            )
            msg = (
                f"{self.name}: the reader refused the new rule files ({', '.join(touched)}):"
                f" {error}; {state}. Check them with `promtool check rules`; the reader's"
                " log names the line."
            )
            raise DeployError(msg)
        self._folder.commit()
        if self._reader == "prometheus":
            self._verify(_api_base(self._section.reload_url))

    def _reload(self, url: str) -> str | None:
        """POST the reload URL; return None on success, else what went wrong (readable)."""
        path = urlsplit(url).path
        try:
            response = httpx.post(url, timeout=RELOAD_TIMEOUT)
        except httpx.HTTPError as error:
            return f"POST {path} failed: {type(error).__name__}"
        if response.is_success:
            return None
        return f"POST {path} answered {response.status_code}: {api_message(response.text)}"

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
