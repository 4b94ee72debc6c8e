"""Read slo/slos.yaml: parse it, remember the line of every key, validate, resolve.

Every problem is reported as ``file:line: field: message`` and all of them are raised
together (``SloConfigErrors``), the way the synthetic monitor and the webhook relay report
their YAML. Duplicate keys are an error: PyYAML would silently keep the last one, and a
service or SLO written twice would lose its first definition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lookout_stack.slo.errors import SloConfigError, SloConfigErrors
from lookout_stack.slo.model import Slo, SloFile, resolve

__all__ = ["LoadedSlos", "load_slos", "parse_slos"]

Path_ = tuple[str | int, ...]


class LoadedSlos:
    """The validated file and its resolved SLOs."""

    def __init__(self, source: str, document: SloFile, slos: list[Slo]) -> None:
        """Keep where it came from, the validated document and the SLOs in file order."""
        self.source = source
        self.document = document
        self.slos = slos


def _index(
    node: yaml.Node,
    path: Path_,
    lines: dict[Path_, int],
    duplicates: list[tuple[Path_, int, str]],
) -> None:
    """Record the line of every mapping key and sequence item under ``path``."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            if (*path, key) in lines:
                first = lines[(*path, key)]
                duplicates.append(
                    (
                        (*path, key),
                        key_node.start_mark.line + 1,
                        f"duplicate key (first at line {first}); keep one",
                    )
                )
                continue
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index(value_node, (*path, key), lines, duplicates)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index(item, (*path, index), lines, duplicates)


def _line_of(lines: dict[Path_, int], loc: Path_) -> int:
    """Return the line of the deepest part of ``loc`` the file has."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _field(loc: Path_) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _clean_loc(loc: tuple[Any, ...]) -> Path_:
    """Drop pydantic's markers (``[key]``, validator names) from an error location."""
    return tuple(part for part in loc if not (isinstance(part, str) and part == "[key]"))


def _message(item: dict[str, Any]) -> str:
    if item["type"] == "extra_forbidden":
        return "unknown field (check its spelling against the comments in slo/slos.yaml)"
    if item["type"] == "missing":
        return "required field is missing"
    if item["type"] == "string_pattern_mismatch":
        return f"{item['input']!r} is not a valid name: use lower-case letters, digits and '-'"
    return str(item["msg"]).removeprefix("Value error, ")


def parse_slos(text: str, source: str = "slo/slos.yaml") -> LoadedSlos:
    """Parse and validate the SLO file's text; raise SloConfigErrors naming file and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise SloConfigErrors(
            [SloConfigError(f"not valid YAML: {problem}", file=source, line=line)]
        ) from None
    lines: dict[Path_, int] = {}
    duplicates: list[tuple[Path_, int, str]] = []
    if root is not None:
        _index(root, (), lines, duplicates)

    def located(loc: Path_, message: str) -> SloConfigError:
        return SloConfigError(message, file=source, line=_line_of(lines, loc), field=_field(loc))

    errors = [
        SloConfigError(message, file=source, line=line, field=_field(loc))
        for loc, line, message in duplicates
    ]
    if not isinstance(data, dict):
        msg = "the file must be a mapping with window, alerts, indicators and services"
        raise SloConfigErrors([*errors, SloConfigError(msg, file=source, line=1)])
    try:
        document = SloFile.model_validate(data)
    except ValidationError as error:
        errors.extend(
            located(_clean_loc(tuple(item["loc"])), _message(dict(item)))
            for item in error.errors(include_url=False)
        )
        raise SloConfigErrors(errors) from None
    slos, problems = resolve(document)
    errors.extend(located(loc, message) for loc, message in problems)
    if errors:
        raise SloConfigErrors(errors)
    return LoadedSlos(source, document, slos)


def load_slos(path: Path, display: str | None = None) -> LoadedSlos:
    """Read and validate the SLO file at ``path`` (named ``display`` in messages)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SloConfigErrors(
            [SloConfigError(f"cannot read the file: {error}", file=name)]
        ) from None
    return parse_slos(text, name)
