"""Render what an environment gets: the repository's configs with the overlay applied.

``render_environment(environment, root, out)`` writes, under ``out`` and in the repository's
own layout (same relative paths), every config file of the stack an environment runs, plus
``render.json`` listing each file, where it came from and what the overlay changed in it.
YAML is edited through ruamel.yaml's round trip, so comments and layout survive and a
changed value carries a comment naming the overlay field that set it.

What the overlay changes, and where:

* ``slos``: slo/slos.yaml with the overrides, through ``lookout_stack.slo``'s own generator,
  gives prometheus/rules/slo.yml and its promtool tests (prometheus/tests/slo.test.yml);
* ``alert_thresholds``: the number an alert rule compares with (``<expr> > <number>``),
  then the dashboards are rebuilt from the rendered rules, so panels and alerts agree;
* ``retention``: Loki's ``limits_config.retention_period``, Tempo 3.0's ``block_retention``
  (backend_scheduler and backend_worker: 3.0 removed the compactor block); metrics retention
  is a Prometheus flag or a Mimir limit, in no file here: render.json names it under
  ``settings`` and the command prints it;
* ``trace_sampling_percent``: the collector's tail-sampling probabilistic policy;
* ``datasources``: Grafana's datasource URLs, tenant header (``X-Scope-OrgID``) and auth, the
  secrets as Grafana's own provisioning references ``$__env{VAR}`` / ``$__file{PATH}``, so no
  secret is written; ``grafana/grafana.ini`` turns anonymous access off;
* ``bugsink_url``: the ``${BUGSINK_URL}`` of the Loki datasource's link to Bugsink;
* ``alert_relay``: Alertmanager's webhook URL and bearer token (a reference, as above, or the
  ``credentials_file`` an Alertmanager reading its file opens itself);
* a Loki tenant (``loki_rules.tenant`` or ``datasources.loki.tenant``) renames the rule folder
  ``loki/rules/fake`` to ``loki/rules/<tenant>``, the folder Loki's local ruler reads.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import FoldedScalarString

from lookout_stack.dashboards import OUTPUT_DIR as DASHBOARDS_DIR
from lookout_stack.dashboards import RuleError, build_all
from lookout_stack.dashboards.rules import _COMPARISON
from lookout_stack.deploy.environment import Datasource, Environment
from lookout_stack.deploy.model import AlertmanagerFile, DeployError, RulerApi, SecretRef
from lookout_stack.slo.command import RULES_FILE, SLO_FILE, TESTS_FILE
from lookout_stack.slo.errors import SloError
from lookout_stack.slo.loader import parse_slos
from lookout_stack.slo.promtool_tests import render_tests
from lookout_stack.slo.rules import render_rules

__all__ = ["MANIFEST", "RenderError", "Rendered", "render_environment", "secret_reference"]

#: The listing written beside the rendered files.
MANIFEST = "render.json"

# The base files an environment gets, relative to the root. Left out on purpose: the
# hand-written promtool tests (they pin the base thresholds an overlay may change),
# alertmanager/route-tests.yaml (a test table) and alertmanager/relay-token.dev (a dev secret).
_FILES = (
    "prometheus/prometheus.yml",
    "alertmanager/alertmanager.yml",
    "loki/loki.yaml",
    "tempo/tempo.yaml",
    "otel-collector/config.yaml",
)
_GLOBS = (
    "prometheus/rules/*.yml",
    "loki/rules/*/*.yaml",
    "alertmanager/templates/*.tmpl",
    "grafana/provisioning/*/*.yaml",
)
_DATASOURCES = Path("grafana/provisioning/datasources/datasources.yaml")
_GRAFANA_INI = Path("grafana/grafana.ini")
_BUGSINK_REFERENCE = "${BUGSINK_URL}"
_LOKI_RULES = Path("loki/rules")
_BASE_TENANT = "fake"


class RenderError(DeployError):
    """The overlay cannot be applied: it names the overlay field, the file and what to do."""


@dataclass
class Rendered:
    """One file of the rendered folder: its text, its source and what the overlay changed."""

    text: str
    source: str
    changes: list[str] = field(default_factory=list)


def _yaml() -> YAML:
    """Return a round-trip YAML that writes the repository's files back byte for byte."""
    handler = YAML()
    handler.width = 4096
    handler.preserve_quotes = True
    handler.indent(mapping=2, sequence=4, offset=2)
    return handler


def _load(text: str) -> Any:
    return _yaml().load(text)


def _dump(document: Any) -> str:
    stream = io.StringIO()
    _yaml().dump(document, stream)
    return stream.getvalue()


def secret_reference(secret: SecretRef) -> str:
    """Return Grafana's provisioning reference to the secret (``$__env{X}``/``$__file{P}``)."""
    if secret.env is not None:
        return f"$__env{{{secret.env}}}"
    return f"$__file{{{secret.file}}}"


def render_environment(environment: Environment, root: Path, out: Path) -> list[Path]:
    """Write the environment's files under ``out`` (repository layout) and ``render.json``.

    Return the written paths (relative to ``out``), ``render.json`` last. Raise RenderError
    naming the overlay field and the file when an overlay does not fit the base configs.
    """
    files = _base_files(root)
    where = environment.source
    _apply_slos(environment, root, files, where)
    _apply_thresholds(environment, files, where)
    _edit(files, "loki/loki.yaml", lambda doc: _loki_retention(environment, doc, where))
    _edit(files, "tempo/tempo.yaml", lambda doc: _tempo_retention(environment, doc, where))
    _edit(files, "otel-collector/config.yaml", lambda doc: _sampling(environment, doc, where))
    _edit(files, str(_DATASOURCES), lambda doc: _datasources(environment, doc, where))
    _edit(files, "alertmanager/alertmanager.yml", lambda doc: _relay(environment, doc, where))
    files = _rename_loki_tenant(environment, files)
    files[str(_GRAFANA_INI)] = Rendered(_grafana_ini(where), where, ["anonymous access off"])
    _rebuild_dashboards(files, root, out)
    return _write(environment, files, out)


def _base_files(root: Path) -> dict[str, Rendered]:
    paths = [root / name for name in _FILES]
    for pattern in _GLOBS:
        paths += sorted(root.glob(pattern))
    files: dict[str, Rendered] = {}
    for path in paths:
        relative = path.relative_to(root).as_posix()
        try:
            files[relative] = Rendered(path.read_text(encoding="utf-8"), relative)
        except OSError as error:
            msg = f"{relative}: cannot read the base config: {error.strerror}"
            raise RenderError(msg) from error
    return files


def _edit(files: dict[str, Rendered], name: str, change: Callable[[Any], list[str]]) -> None:
    """Apply ``change`` to the YAML document of ``name``; keep its text if nothing changed."""
    document = _load(files[name].text)
    changes = change(document)
    if changes:
        files[name].text = _dump(document)
        files[name].changes += changes


def _mapping_at(document: Any, keys: tuple[str, ...], name: str, what: str) -> CommentedMap:
    node = document
    for key in keys:
        if not isinstance(node, CommentedMap) or key not in node:
            msg = f"{what}: {name} has no {'.'.join(keys)} to set (the base config changed?)"
            raise RenderError(msg)
        node = node[key]
    if not isinstance(node, CommentedMap):
        msg = f"{what}: {name}: {'.'.join(keys)} is not a mapping"
        raise RenderError(msg)
    return node


def _set(node: CommentedMap, key: str, value: Any, why: str) -> None:
    """Set ``key`` and name the overlay field that set it in a comment beside it.

    ruamel keeps the comment lines that follow a value in the same slot as its end-of-line
    comment: they are carried over, so only the end-of-line part is replaced.
    """
    node[key] = value
    slot = node.ca.items.get(key)
    old = slot[2].value if slot and len(slot) > 2 and slot[2] is not None else ""
    following = old[1:] if old.startswith("\n") else old.partition("\n")[2]
    node.yaml_add_eol_comment(f"# {why}", key, column=0)
    token = node.ca.items[key][2]
    # Two spaces before the `#`, as yamllint's `comments` rule wants.
    token.value = " " + token.value.rstrip("\n") + "\n" + following


def _put(node: CommentedMap, key: str, value: Any, why: str, *, after: str | None) -> None:
    """Set ``key``; a new key goes right after ``after`` (first when None), not at the end.

    At the end it would land below the comments that introduce the next block (ruamel keeps
    them with the mapping's last value).
    """
    if key not in node:
        keys = list(node)
        node.insert(keys.index(after) + 1 if after in keys else 0, key, value)
    _set(node, key, value, why)


# --- SLOs and thresholds ---------------------------------------------------------------------


def _apply_slos(
    environment: Environment, root: Path, files: dict[str, Rendered], where: str
) -> None:
    """Regenerate the SLO rules and their tests from slos.yaml with the overrides."""
    text = (root / SLO_FILE).read_text(encoding="utf-8")
    changes: list[str] = []
    if environment.slos:
        document = _load(text)
        for service, overrides in environment.slos.items():
            for name, override in overrides.items():
                spec = document["services"][service][name]
                if override.objective is not None:
                    spec["objective"] = float(override.objective)
                    changes.append(f"{service}/{name} objective {override.objective}")
                if override.threshold is not None:
                    spec["threshold"] = override.threshold
                    changes.append(f"{service}/{name} threshold {override.threshold}")
        text = _dump(document)
    # The generated files name their source in their first line (kept within 120 columns).
    name = f"{SLO_FILE} + slos of {environment.name}" if changes else str(SLO_FILE)
    try:
        loaded = parse_slos(text, name)
    except SloError as error:
        raise RenderError(str(error)) from error
    source = f"{SLO_FILE} + {where} (slos)" if changes else str(SLO_FILE)
    files[str(RULES_FILE)] = Rendered(render_rules(loaded), source, changes)
    files[str(TESTS_FILE)] = Rendered(render_tests(loaded), source, list(changes))


_PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _apply_thresholds(environment: Environment, files: dict[str, Rendered], where: str) -> None:
    """Rewrite the number each overridden alert compares with, in its rule file."""
    rule_files = [n for n in files if n.startswith(("prometheus/rules/", "loki/rules/"))]
    documents = {name: _load(files[name].text) for name in rule_files}
    for index, override in enumerate(environment.alert_thresholds):
        what = f"{where}: alert_thresholds[{index}] ({override.alert}, {override.severity})"
        found = [
            (name, rule)
            for name, document in documents.items()
            for group in (document or {}).get("groups") or []
            for rule in group.get("rules") or []
            if rule.get("alert") == override.alert
            and str((rule.get("labels") or {}).get("severity", "")) == override.severity
        ]
        if not found:
            msg = f"{what}: no alert rule of that name and severity under prometheus/ or loki/rules"
            raise RenderError(msg)
        if len(found) > 1:
            msg = f"{what}: {len(found)} rules match ({', '.join(n for n, _ in found)}); rename one"
            raise RenderError(msg)
        name, rule = found[0]
        if name == str(RULES_FILE):
            msg = f"{what}: {name} is generated from {SLO_FILE}: override the SLO under `slos`"
            raise RenderError(msg)
        expr = str(rule["expr"])
        start, end = _comparison_number(expr, override.compares, f"{what}: {name}")
        new = _number(override.value)
        rewritten = expr[:start] + new + expr[end:]
        rule["expr"] = _same_style(rule["expr"], rewritten, start, len(new) - (end - start))
        files[name].changes.append(
            f"{override.alert} ({override.severity}): {expr[start:end]} -> {new}"
        )
        if where not in files[name].source:
            files[name].source = f"{files[name].source} + {where} (alert_thresholds)"
    for name, document in documents.items():
        if files[name].changes:
            files[name].text = _dump(document)


def _comparison_number(expr: str, compares: str | None, what: str) -> tuple[int, int]:
    """Return the span of the one plain number ``expr`` compares with (after ``compares``)."""
    flat = " ".join(expr.split())
    if compares is None:
        found = list(_COMPARISON.finditer(expr))
    else:
        # As the dashboards find a threshold (dashboards.rules): the text, then for a series
        # its matchers and closing parentheses, then the comparison.
        pattern = r"\s*".join(re.escape(part) for part in compares.split())
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", compares):
            pattern = rf"(?<![A-Za-z0-9_:]){pattern}(?![A-Za-z0-9_:])(?:\{{[^}}]*\}})?(?:\s*\))*"
        found = [
            comparison
            for left in re.finditer(pattern, expr)
            if (comparison := _COMPARISON.match(expr, left.end() + _lead(expr, left.end())))
        ]
    spans = sorted(
        {
            (m.start("value"), m.end("value"))
            for m in found
            if _PLAIN_NUMBER.fullmatch(m.group("value"))
        }
    )
    if len(spans) == 1:
        return spans[0]
    if compares is not None:
        msg = f"{what}: no comparison of {compares!r} with a plain number in its expr {flat!r}"
    elif spans:
        msg = (
            f"{what}: its expr compares {len(spans)} things with a number ({flat!r}); add "
            "`compares: <the text left of the comparison>` naming the one to change"
        )
    else:
        msg = f"{what}: its expr is not of the shape `<expr> > <number>` ({flat!r})"
    raise RenderError(msg)


def _lead(text: str, start: int) -> int:
    return len(text[start:]) - len(text[start:].lstrip())


def _same_style(original: Any, text: str, at: int, shift: int) -> Any:
    """Keep a folded ``>-`` expr folded where it was (moving folds after the edit)."""
    if not isinstance(original, FoldedScalarString):
        return text
    folded = FoldedScalarString(text)
    folded.fold_pos = [p + shift if p > at else p for p in getattr(original, "fold_pos", [])]
    return folded


def _rebuild_dashboards(files: dict[str, Rendered], root: Path, out: Path) -> None:
    """Build the dashboards from the rendered rules, so drawn thresholds match the alerts."""
    scratch = out / ".rules-for-dashboards"
    try:
        for name, rendered in files.items():
            if name.startswith(("prometheus/rules/", "loki/rules/")):
                target = scratch / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(rendered.text, encoding="utf-8")
        try:
            built = build_all(scratch)
        except RuleError as error:
            msg = f"dashboards from the rendered rules: {error}"
            raise RenderError(msg) from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tuned = any(
        files[n].changes for n in files if n.startswith(("prometheus/rules/", "loki/rules/"))
    )
    for uid, text in built.items():
        name = (DASHBOARDS_DIR / f"{uid}.json").as_posix()
        source = "lookout_stack.dashboards, thresholds from the rendered rules"
        files[name] = Rendered(
            text, source, ["thresholds from the overridden rules"] if tuned else []
        )


# --- backends --------------------------------------------------------------------------------


def _loki_retention(environment: Environment, document: Any, where: str) -> list[str]:
    hours = environment.retention.hours("logs")
    if hours is None:
        return []
    limits = _mapping_at(document, ("limits_config",), "loki/loki.yaml", f"{where}: retention.logs")
    _set(limits, "retention_period", hours, f"{where}: retention.logs")
    return [f"limits_config.retention_period {hours}"]


def _tempo_retention(environment: Environment, document: Any, where: str) -> list[str]:
    hours = environment.retention.hours("traces")
    if hours is None:
        return []
    what = f"{where}: retention.traces"
    paths = (
        ("backend_scheduler", "provider", "compaction", "compaction"),
        ("backend_worker", "compaction"),
    )
    for path in paths:
        _set(_mapping_at(document, path, "tempo/tempo.yaml", what), "block_retention", hours, what)
    return [f"{'.'.join(p)}.block_retention {hours}" for p in paths]


def _sampling(environment: Environment, document: Any, where: str) -> list[str]:
    percent = environment.trace_sampling_percent
    if percent is None:
        return []
    what = f"{where}: trace_sampling_percent"
    sampling = _mapping_at(
        document, ("processors", "tail_sampling"), "otel-collector/config.yaml", what
    )
    policies = [p for p in sampling.get("policies") or [] if p.get("type") == "probabilistic"]
    if len(policies) != 1:
        msg = (
            f"{what}: otel-collector/config.yaml has {len(policies)} probabilistic "
            "tail-sampling policies, expected 1"
        )
        raise RenderError(msg)
    value = int(percent) if percent == int(percent) else percent
    _set(policies[0]["probabilistic"], "sampling_percentage", value, what)
    return [f"tail_sampling {policies[0].get('name')}: sampling_percentage {value}"]


def _datasources(environment: Environment, document: Any, where: str) -> list[str]:
    changes: list[str] = []
    entries = {str(entry.get("uid")): entry for entry in document.get("datasources") or []}
    if environment.bugsink_url is not None:
        count = _replace_text(document, _BUGSINK_REFERENCE, environment.bugsink_url)
        if not count:
            msg = f"{where}: bugsink_url: {_DATASOURCES} has no {_BUGSINK_REFERENCE} to set"
            raise RenderError(msg)
        changes.append(f"{_BUGSINK_REFERENCE} -> {environment.bugsink_url} ({count} link)")
    overlay = environment.datasources
    for uid in ("prometheus", "loki", "tempo", "alertmanager"):
        source: Datasource | None = getattr(overlay, uid)
        if source is None:
            continue
        what = f"{where}: datasources.{uid}"
        if uid not in entries:
            msg = f"{what}: {_DATASOURCES} has no datasource with uid {uid!r}"
            raise RenderError(msg)
        changes += _datasource(entries[uid], uid, source, what)
    return changes


def _replace_text(node: Any, old: str, new: str) -> int:
    """Replace ``old`` in every string under ``node`` (keeping each scalar's quoting style)."""
    count = 0
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in items:
        if isinstance(value, str) and old in value:
            node[key] = type(value)(value.replace(old, new))
            count += 1
        elif isinstance(value, dict | list):
            count += _replace_text(value, old, new)
    return count


def _datasource(entry: CommentedMap, uid: str, source: Datasource, what: str) -> list[str]:
    _set(entry, "url", source.url, what)
    changes = [f"{uid}: url {source.url}"]
    if "jsonData" not in entry:
        entry.insert(list(entry).index("url") + 1, "jsonData", CommentedMap())
    json_data = entry["jsonData"]
    secure = CommentedMap()
    headers: list[tuple[str, str]] = []
    if source.tenant is not None:
        headers.append(("X-Scope-OrgID", source.tenant))
        changes.append(f"{uid}: tenant header")
    auth = source.auth
    if auth is not None and auth.token is not None:
        headers.append(("Authorization", f"Bearer {secret_reference(auth.token)}"))
        changes.append(f"{uid}: bearer token ({auth.token.describe()})")
    elif auth is not None and auth.password is not None:
        _put(entry, "basicAuth", True, what, after="url")
        _put(entry, "basicAuthUser", auth.username, what, after="basicAuth")
        secure["basicAuthPassword"] = secret_reference(auth.password)
        changes.append(f"{uid}: basic auth ({auth.password.describe()})")
    previous: str | None = None
    for number, (name, value) in enumerate(headers, start=1):
        _put(json_data, f"httpHeaderName{number}", name, what, after=previous)
        previous = f"httpHeaderName{number}"
        secure[f"httpHeaderValue{number}"] = value
    if source.implementation is not None:
        key, value = (
            ("prometheusType", "Mimir" if source.implementation == "mimir" else "Prometheus")
            if uid == "prometheus"
            else ("implementation", source.implementation)
        )
        _put(json_data, key, value, what, after=previous)
        changes.append(f"{uid}: {key} {value}")
    if secure:
        anchor = "basicAuthUser" if "basicAuthUser" in entry else "url"
        entry.insert(list(entry).index(anchor) + 1, "secureJsonData", secure)
        entry.yaml_set_comment_before_after_key(
            "secureJsonData",
            before="Secrets by reference (Grafana's $__env{VAR} / $__file{PATH}), read when loaded",
            indent=4,
        )
    return changes


def _relay(environment: Environment, document: Any, where: str) -> list[str]:
    relay = environment.alert_relay
    if relay is None:
        return []
    what = f"{where}: alert_relay"
    reads_file = (
        isinstance(environment.alertmanager, AlertmanagerFile) or environment.alertmanager is None
    )
    count = 0
    for receiver in document.get("receivers") or []:
        for webhook in receiver.get("webhook_configs") or []:
            _set(webhook, "url", relay.url, what)
            authorization = webhook.setdefault("http_config", CommentedMap()).setdefault(
                "authorization", CommentedMap({"type": "Bearer"})
            )
            authorization.pop("credentials_file", None)
            authorization.pop("credentials", None)
            if reads_file and relay.token.file is not None:
                _set(authorization, "credentials_file", str(relay.token.file), what)
            else:
                _set(authorization, "credentials", secret_reference(relay.token), what)
            count += 1
    if not count:
        msg = f"{what}: alertmanager/alertmanager.yml has no webhook receiver to point at the relay"
        raise RenderError(msg)
    return [f"{count} webhook receivers -> {relay.url} ({relay.token.describe()})"]


def _loki_tenant(environment: Environment) -> str | None:
    rules = environment.loki_rules
    if isinstance(rules, RulerApi) and rules.tenant:
        return rules.tenant
    source = environment.datasources.loki
    return source.tenant if source is not None else None


def _rename_loki_tenant(
    environment: Environment, files: dict[str, Rendered]
) -> dict[str, Rendered]:
    tenant = _loki_tenant(environment)
    if tenant is None or tenant == _BASE_TENANT:
        return files
    old, new = f"{_LOKI_RULES}/{_BASE_TENANT}/", f"{_LOKI_RULES}/{tenant}/"
    renamed: dict[str, Rendered] = {}
    for name, rendered in files.items():
        if name.startswith(old):
            rendered.changes.append(f"tenant folder {_BASE_TENANT} -> {tenant}")
        renamed[new + name.removeprefix(old) if name.startswith(old) else name] = rendered
    return renamed


def _grafana_ini(where: str) -> str:
    return (
        "# Grafana 13.2 server settings every deployed environment needs (rendered from "
        f"{where}).\n"
        "# Reference: https://grafana.com/docs/grafana/v13.2/setup-grafana/configure-grafana/\n"
        "# Merge into the Grafana's grafana.ini (Helm: the chart's `grafana.ini` value; "
        "compose: GF_AUTH_ANONYMOUS_ENABLED=false).\n\n"
        "# Anonymous access: off, so every viewer logs in (the laptop stack turns it on).\n"
        "[auth.anonymous]\n"
        "enabled = false\n\n"
        "# No self sign-up: accounts are created by an admin or an identity provider.\n"
        "[users]\n"
        "allow_sign_up = false\n"
    )


def _write(environment: Environment, files: dict[str, Rendered], out: Path) -> list[Path]:
    written: list[Path] = []
    for name in sorted(files):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[name].text, encoding="utf-8")
        written.append(Path(name))
    manifest = {
        "environment": environment.name,
        "files": [
            {"path": name, "source": files[name].source, "changes": files[name].changes}
            for name in sorted(files)
        ],
        "settings": _settings(environment),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    written.append(Path(MANIFEST))
    return written


def _settings(environment: Environment) -> list[dict[str, str]]:
    """Overlay values no rendered file holds: where they go instead."""
    metrics = environment.retention.metrics
    if metrics is None:
        return []
    return [
        {
            "field": "retention.metrics",
            "value": metrics,
            "where": (
                f"Prometheus: the flag --storage.tsdb.retention.time={metrics} "
                "(docker-compose.yml); Mimir: the limit "
                f"compactor_blocks_retention_period: {metrics}"
            ),
        }
    ]
