"""Load journeys from files and directories: parse, expand ``${ENV}``, validate, merge.

``load_paths`` takes files and directories (a directory contributes its ``*.yml`` and
``*.yaml`` files, recursively, in name order; hidden files are skipped). Each file is
validated on its own, its ``defaults`` applied to its own journeys and checks, then all are
merged by name; a name defined twice is an error naming both places. Every problem found is
collected and raised together as ``ConfigErrors``, each as ``file:line: field: message``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from synthetic_monitor.config.model import CheckFile, Journey, MonitorConfig
from synthetic_monitor.config.yaml_loader import YamlList, YamlMap, load_yaml, locate
from synthetic_monitor.errors import ConfigError, ConfigErrors

__all__ = ["collect_files", "load_config", "load_paths"]

_SCHEDULE_KEYS = ("interval", "timeout", "jitter", "retries", "retry_delay")
_CHECK_JOURNEY_KEYS = frozenset({"name", "description", "labels", *_SCHEDULE_KEYS})


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """Return the YAML files named by ``paths`` (files as given, directories searched)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                candidate
                for candidate in path.rglob("*")
                if candidate.suffix in {".yml", ".yaml"}
                and candidate.is_file()
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            )
            if not found:
                msg = "the directory holds no .yml or .yaml file"
                raise ConfigErrors([ConfigError(msg, file=str(path))])
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigErrors([ConfigError("no such file or directory", file=str(path))])
    return files


def _messages(
    error: ValidationError, root: object, prefix: tuple[str | int, ...]
) -> list[ConfigError]:
    found = []
    for item in error.errors(include_url=False):
        file, line, field = locate(root, (*prefix, *item["loc"]))
        message = str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check its spelling against the README)"
        found.append(ConfigError(message, file=file, line=line, field=field))
    return found


def _validate(
    model: type[BaseModel], data: object, root: object, prefix: tuple[str | int, ...]
) -> tuple[BaseModel | None, list[ConfigError]]:
    try:
        return model.model_validate(data), []
    except ValidationError as error:
        return None, _messages(error, root, prefix)


def _check_to_journey(check: Mapping[str, Any]) -> dict[str, Any]:
    step = {key: value for key, value in check.items() if key not in _CHECK_JOURNEY_KEYS}
    step["name"] = "check"
    journey = {key: value for key, value in check.items() if key in _CHECK_JOURNEY_KEYS}
    journey["steps"] = [step]
    journey["kind"] = "check"
    return journey


def _load_file(path: Path, environ: Mapping[str, str]) -> tuple[list[Journey], list[ConfigError]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [], [ConfigError(f"cannot read the file: {error}", file=name)]
    try:
        data = load_yaml(text, name, environ)
    except ConfigError as error:
        return [], [error]
    if data is None:
        return [], []
    if not isinstance(data, YamlMap):
        msg = "the top level must be a mapping with defaults:, journeys: and/or checks:"
        return [], [ConfigError(msg, file=name, line=1)]
    parsed, errors = _validate(CheckFile, data, data, ())
    if not isinstance(parsed, CheckFile):
        return [], errors
    defaults = parsed.defaults.model_dump(exclude_none=True)
    journeys: list[Journey] = []
    for section in ("journeys", "checks"):
        for index in range(len(data.get(section) or YamlList())):
            journey, problems = _load_item(data, section, index, defaults)
            errors.extend(problems)
            if journey is not None:
                journeys.append(journey)
    return journeys, errors


def _load_item(
    data: YamlMap, section: str, index: int, defaults: Mapping[str, Any]
) -> tuple[Journey | None, list[ConfigError]]:
    """Validate one journey or check of a file, with that file's defaults applied."""
    item = data[section][index]
    if not isinstance(item, dict):
        file, line, field = locate(data, (section, index))
        return None, [ConfigError("expected a mapping", file=file, line=line, field=field)]
    shaped = dict(item) if section == "journeys" else _check_to_journey(item)
    for key, value in defaults.items():
        if key == "labels":
            shaped["labels"] = {**value, **(item.get("labels") or {})}
        else:
            shaped.setdefault(key, value)
    _, line, _ = locate(data, (section, index))
    shaped["source"] = f"{data.file}:{line}"
    try:
        return Journey.model_validate(shaped), []
    except ValidationError as error:
        errors = []
        for problem in error.errors(include_url=False):
            loc = tuple(problem["loc"])
            if section == "checks" and loc[:2] == ("steps", 0):
                loc = loc[2:]
            file, where, field = locate(data, (section, index, *loc))
            message = str(problem["msg"]).removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden":
                message = "unknown field (check its spelling against the README)"
            errors.append(ConfigError(message, file=file, line=where, field=field))
        return None, errors


def load_paths(
    paths: Iterable[str | Path], environ: Mapping[str, str] | None = None
) -> MonitorConfig:
    """Load, validate and merge every journey in ``paths``; raise ConfigErrors listing all."""
    env = os.environ if environ is None else environ
    files = collect_files(paths)
    merged: dict[str, Journey] = {}
    errors: list[ConfigError] = []
    for path in files:
        journeys, problems = _load_file(path, env)
        errors.extend(problems)
        for journey in journeys:
            if journey.name in merged:
                file, _, line = journey.source.rpartition(":")
                msg = (
                    f"journey name {journey.name!r} is already defined at "
                    f"{merged[journey.name].source}; names must be unique across all files"
                )
                errors.append(
                    ConfigError(
                        msg, file=file, line=int(line) if line.isdigit() else None, field="name"
                    )
                )
                continue
            merged[journey.name] = journey
    if errors:
        raise ConfigErrors(errors)
    if not merged:
        where = ", ".join(str(path) for path in files)
        raise ConfigErrors([ConfigError("no journeys or checks are defined", file=where)])
    return MonitorConfig(journeys=merged, files=tuple(str(path) for path in files))


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> MonitorConfig:
    """Load one file or directory (see ``load_paths``)."""
    return load_paths([path], environ)
