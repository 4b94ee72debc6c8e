"""Files a deploy owns in a folder: atomic writes, and a manifest of what the deploy wrote.

A reader (Prometheus, Loki, Alertmanager) may read the folder at any moment, so every file
is written to a temporary file in the same folder and renamed over the old one: the reader
sees the old content or the new, never half a file. The folder may hold files that someone
else put there; the manifest (``.lookout-deployed.json``) lists the files this deploy wrote,
and only those are ever deleted. Each write and delete is remembered so that ``rollback``
can put the folder back as it was (used when the reader refuses the new files).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from lookout_stack.deploy.model import Change, DeployError
from lookout_stack.deploy.targets.textdiff import unified

__all__ = ["MANIFEST", "OwnedDirectory", "write_atomically"]

#: The manifest's file name: a dot file, so rule globs such as ``*.yml`` never match it.
MANIFEST = ".lookout-deployed.json"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            # Keep the mode the reader's operator gave the file (e.g. 0644 for another user).
            Path(temporary).chmod(path.stat().st_mode & 0o7777)
        else:
            Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise


class OwnedDirectory:
    """The files a deploy owns in ``directory``, planned against a desired set of files."""

    def __init__(self, directory: Path, target: str) -> None:
        self.directory = directory
        self.target = target
        self._undo: list[tuple[Path, str | None]] = []

    @property
    def manifest_path(self) -> Path:
        """Where the list of files this deploy wrote is kept."""
        return self.directory / MANIFEST

    def owned(self) -> set[str]:
        """Return the relative paths this deploy wrote earlier (empty before the first deploy)."""
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as error:
            msg = (
                f"{self.target}: cannot read {self.manifest_path} ({error}); it lists the files"
                " an earlier deploy wrote: repair it or remove it (then nothing is deleted)"
            )
            raise DeployError(msg) from None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            msg = f"{self.target}: {self.manifest_path}: expected {{'files': [relative paths]}}"
            raise DeployError(msg)
        return set(files)

    def _record(self, change: Callable[[set[str]], None]) -> None:
        owned = self.owned()
        change(owned)
        # Entries whose file is gone (removed by hand) are dropped: nothing left to own.
        owned = {r for r in owned if (self.directory / r).exists()}
        payload = {"written_by": "lookout apply", "files": sorted(owned)}
        write_atomically(self.manifest_path, json.dumps(payload, indent=2) + "\n")

    def _own(self, relative: str) -> None:
        self._record(lambda files: files.add(relative))

    def _disown(self, relative: str) -> None:
        self._record(lambda files: files.discard(relative))

    def _read(self, relative: str) -> str | None:
        try:
            return (self.directory / relative).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            msg = f"{self.target}: cannot read {self.directory / relative}: {error.strerror}"
            raise DeployError(msg) from None

    def plan(self, desired: Mapping[str, str], describe: Callable[[str], str]) -> list[Change]:
        """Return the writes and deletes that make the folder hold ``desired`` (path -> text).

        ``describe`` names an object for a person ("rule file slo.yml in /etc/prometheus/rules").
        Deletes come last and touch only files listed in the manifest.
        """
        owned = self.owned()
        changes: list[Change] = []
        for relative in sorted(desired):
            live = self._read(relative)
            text = desired[relative]
            if live == text:
                continue
            diff = unified(live, text, relative)
            if live is not None and relative not in owned:
                diff = f"# {relative} was not written by lookout; apply replaces it\n" + diff
            changes.append(
                Change(
                    target=self.target,
                    kind="create" if live is None else "update",
                    object=describe(relative),
                    diff=diff,
                    apply=partial(self._write, relative, text),
                )
            )
        for relative in sorted(owned - set(desired)):
            live = self._read(relative)
            if live is None:
                continue
            changes.append(
                Change(
                    target=self.target,
                    kind="delete",
                    object=describe(relative),
                    diff=unified(live, None, relative),
                    apply=partial(self._delete, relative),
                )
            )
        return changes

    def _write(self, relative: str, text: str) -> None:
        path = self.directory / relative
        self._undo.append((path, self._read(relative)))
        try:
            write_atomically(path, text)
            self._own(relative)
        except OSError as error:
            msg = f"{self.target}: cannot write {path}: {error.strerror}"
            raise DeployError(msg) from None

    def _delete(self, relative: str) -> None:
        path = self.directory / relative
        self._undo.append((path, self._read(relative)))
        try:
            path.unlink(missing_ok=True)
            self._disown(relative)
        except OSError as error:
            msg = f"{self.target}: cannot delete {path}: {error.strerror}"
            raise DeployError(msg) from None

    @property
    def touched(self) -> list[Path]:
        """The files written or deleted since the last ``commit`` or ``rollback``."""
        return [path for path, _ in self._undo]

    def commit(self) -> None:
        """Forget the undo records: the reader accepted the files."""
        self._undo.clear()

    def rollback(self) -> None:
        """Put back every file written or deleted since the last commit (newest first)."""
        for path, previous in reversed(self._undo):
            relative = path.relative_to(self.directory).as_posix()
            if previous is None:
                path.unlink(missing_ok=True)
                self._disown(relative)
            else:
                write_atomically(path, previous)
                self._own(relative)
        self._undo.clear()
