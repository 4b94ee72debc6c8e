"""Read an environment overlay (``deploy/environments/<name>.yaml``) and validate it.

An environment says where each kind of object is deployed (the four target sections of
``deploy.model``, each optional: absent means "not deployed there") and what differs from the
repository's base configs: datasource URLs, tenants and credentials, retention, SLO
objectives, alert thresholds, the collector's trace sampling, the alert relay's address.
Credentials are references only (``{env: NAME}`` or ``{file: PATH}``); a literal string where a
secret belongs is rejected, naming the field and never echoing the value.

Every problem is reported as ``deploy/environments/<name>.yaml:<line>: <field.path>: <message>``
and all of them together (``EnvironmentErrors``), with the line index of the SLO loader
(``lookout_stack.slo.loader``): one YAML-with-line-numbers reader for the whole CLI.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from lookout_stack.deploy.model import (
    AlertmanagerApi,
    AlertmanagerFile,
    Auth,
    DeployError,
    GrafanaSection,
    RuleFiles,
    RulerApi,
    SecretRef,
    _check_url,
)
from lookout_stack.slo.errors import SloError
from lookout_stack.slo.loader import Path_, _clean_loc, _field, _index, _line_of, load_slos
from lookout_stack.slo.model import threshold_problem
from lookout_stack.slo.promql import duration_seconds

__all__ = [
    "AlertRelay",
    "AlertThreshold",
    "Datasource",
    "Datasources",
    "Environment",
    "EnvironmentErrors",
    "EnvironmentFileError",
    "Retention",
    "SloOverride",
    "environment_path",
    "load_environment",
]

#: Where named environments live, relative to the repository root.
ENVIRONMENTS_DIR = Path("deploy") / "environments"
SLO_FILE = Path("slo") / "slos.yaml"


class EnvironmentFileError(DeployError):
    """One problem in an environment file, located by file, line and field."""

    def __init__(
        self, message: str, *, file: str, line: int | None = None, field: str = ""
    ) -> None:
        """Keep the location beside the message; ``str()`` puts them together."""
        self.message, self.file, self.line, self.field = message, file, line, field
        super().__init__(str(self))

    def __str__(self) -> str:
        """Return ``file:line: field: message`` with the parts that are known."""
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


class EnvironmentErrors(DeployError):
    """Every problem found in an environment file, reported together."""

    def __init__(self, errors: list[EnvironmentFileError]) -> None:
        """Keep the individual errors (at least one)."""
        self.errors = errors
        super().__init__(str(self))

    def __str__(self) -> str:
        """Return one line per error."""
        return "\n".join(str(error) for error in self.errors)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str) -> str:
    if duration_seconds(value) <= 0:
        raise ValueError("must be longer than 0")
    return value


class Retention(_Section):
    """How long each signal is kept (durations: 1 number and 1 unit, s m h d w)."""

    metrics: str | None = None
    logs: str | None = None
    traces: str | None = None

    _check = field_validator("metrics", "logs", "traces")(
        lambda v: None if v is None else _duration(v)
    )

    def hours(self, signal: Literal["metrics", "logs", "traces"]) -> str | None:
        """Return the retention in hours (``30d`` -> ``720h``), a form every backend reads."""
        value = getattr(self, signal)
        if value is None:
            return None
        seconds = duration_seconds(value)
        if seconds % 3600:
            return f"{int(seconds)}s"
        return f"{int(seconds // 3600)}h"


class Datasource(_Section):
    """Where Grafana reaches one backend: URL, tenant (``X-Scope-OrgID``), credentials."""

    url: str
    tenant: str | None = None
    auth: Auth | None = None
    #: The server behind the URL, for Grafana's feature switches (prometheus and alertmanager).
    implementation: Literal["prometheus", "mimir"] | None = None

    _url = field_validator("url")(_check_url)


class Datasources(_Section):
    """Per fixed datasource uid (grafana/provisioning/datasources): what differs."""

    prometheus: Datasource | None = None
    loki: Datasource | None = None
    tempo: Datasource | None = None
    alertmanager: Datasource | None = None

    @model_validator(mode="after")
    def _implementation_where_it_means_something(self) -> Datasources:
        for uid in ("loki", "tempo"):
            source = getattr(self, uid)
            if source is not None and source.implementation is not None:
                msg = f"{uid}.implementation: only prometheus and alertmanager datasources have one"
                raise ValueError(msg)
        return self


class SloOverride(_Section):
    """A different objective (percent) or latency threshold for one SLO of slo/slos.yaml."""

    objective: Annotated[Decimal, Field(gt=0, lt=100, max_digits=12)] | None = None
    threshold: str | None = None

    @model_validator(mode="after")
    def _something(self) -> SloOverride:
        if self.objective is None and self.threshold is None:
            raise ValueError("give objective, threshold or both (or leave the SLO out)")
        if self.threshold is not None:
            _duration(self.threshold)
        return self


class AlertThreshold(_Section):
    """A different number for one alert rule's comparison (``<expr> > <number>``)."""

    alert: str = Field(min_length=1)
    severity: str = Field(min_length=1)
    #: Finite: `.inf` or `.nan` is no number an alert can compare with (nor a PromQL literal).
    value: Annotated[float, Field(allow_inf_nan=False)]
    #: The text just left of the comparison, when the expr compares more than one thing with a
    #: number (``job:http_server_requests_errors:ratio_rate5m``); else leave it out.
    compares: str | None = None


class AlertRelay(_Section):
    """Where Alertmanager sends notifications: the webhook relay's URL and its bearer token."""

    url: str
    token: SecretRef

    _url = field_validator("url")(_check_url)


#: Which ruler each rules section may name, and what its rules are.
_RULERS = {"prometheus_rules": ("mimir", "Prometheus rules"), "loki_rules": ("loki", "LogQL rules")}


class Environment(_Section):
    """One environment: its targets (None = not deployed there) and its overlay values."""

    #: The environment's name (its file name without .yaml), set by the loader.
    name: str = ""
    description: str = ""
    grafana: GrafanaSection | None = None
    prometheus_rules: Annotated[RulerApi | RuleFiles, Field(discriminator="kind")] | None = None
    loki_rules: Annotated[RulerApi | RuleFiles, Field(discriminator="kind")] | None = None
    alertmanager: (
        Annotated[AlertmanagerApi | AlertmanagerFile, Field(discriminator="kind")] | None
    ) = None
    datasources: Datasources = Datasources()
    retention: Retention = Retention()
    slos: dict[str, dict[str, SloOverride]] = {}
    alert_thresholds: list[AlertThreshold] = []
    trace_sampling_percent: Annotated[float, Field(gt=0, le=100)] | None = None
    alert_relay: AlertRelay | None = None
    #: Where a browser reaches Bugsink: the Loki datasource's link from an error line to its
    #: event (``${BUGSINK_URL}`` in the provisioning file; compose sets it on Grafana).
    bugsink_url: str | None = None
    grafana_anonymous_access: bool = False
    #: The file it was read from, as messages name it (set by the loader; not a field).
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """The environment's file as messages name it (``deploy/environments/NAME.yaml``)."""
        return self._source or f"deploy/environments/{self.name}.yaml"

    _bugsink = field_validator("bugsink_url")(lambda v: None if v is None else _check_url(v))

    @field_validator("prometheus_rules", "loki_rules")
    @classmethod
    def _right_ruler(
        cls, value: RulerApi | RuleFiles | None, info: ValidationInfo
    ) -> RulerApi | RuleFiles | None:
        kind, rules = _RULERS[str(info.field_name)]
        if isinstance(value, RulerApi) and value.kind != kind:
            raise ValueError(f"{rules} go to {kind.title()}'s ruler: kind is `{kind}` (or `files`)")
        return value

    @field_validator("grafana_anonymous_access")
    @classmethod
    def _anonymous_off(cls, value: bool) -> bool:
        if value:
            msg = (
                "anonymous access stays off in every deployed environment (anyone who reaches "
                "Grafana would read every dashboard and log line); only the laptop stack turns "
                "it on, through GRAFANA_ANONYMOUS_ENABLED in docker-compose.yml"
            )
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _relay_fits_alertmanager(self) -> Environment:
        relay, manager = self.alert_relay, self.alertmanager
        if isinstance(manager, AlertmanagerApi) and relay is None:
            msg = (
                "alert_relay: required with Mimir's Alertmanager, which refuses credentials_file "
                "(the base config's /run/secrets/relay_token): give the relay's url and token"
            )
            raise ValueError(msg)
        if isinstance(manager, AlertmanagerFile) and relay is not None and relay.token.file is None:
            msg = (
                "alert_relay.token: an Alertmanager that reads its file reads the token from a "
                "file too (credentials_file): give {file: PATH}, a path on the Alertmanager host"
            )
            raise ValueError(msg)
        return self


def environment_path(name_or_path: str, root: Path) -> Path:
    """Return the file of a named environment (``staging``) or the path given as is."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        return Path(name_or_path)
    return root / ENVIRONMENTS_DIR / f"{name_or_path}.yaml"


def _message(item: dict[str, Any]) -> str:
    ctx = item.get("ctx") or {}
    if item["type"] == "model_type" and ctx.get("class_name") == "SecretRef":
        return "a secret goes by reference, never inline: write {env: VARIABLE} or {file: PATH}"
    if item["type"] == "extra_forbidden":
        return "unknown field (see the comments in deploy/environments/staging.yaml)"
    if item["type"] == "missing":
        return "required field is missing"
    if item["type"] == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r}: expected one of {ctx.get('expected_tags')}"
    return str(item["msg"]).removeprefix("Value error, ")


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def load_environment(name_or_path: str, root: Path) -> Environment:
    """Read and validate an environment; raise EnvironmentErrors naming file, line and field."""
    path = environment_path(name_or_path, root)
    source = _display(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        known = sorted(p.stem for p in (root / ENVIRONMENTS_DIR).glob("*.yaml"))
        hint = f" (known environments: {', '.join(known)})" if known else ""
        reason = getattr(error, "strerror", None) or str(error)
        raise EnvironmentErrors(
            [EnvironmentFileError(f"cannot read: {reason}{hint}", file=source)]
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise EnvironmentErrors(
            [
                EnvironmentFileError(
                    f"not valid YAML: {problem}", file=source, line=mark.line + 1 if mark else None
                )
            ]
        ) from None
    lines: dict[Path_, int] = {}
    duplicates: list[tuple[Path_, int, str]] = []
    if node is not None:
        _index(node, (), lines, duplicates)
    errors = [
        EnvironmentFileError(m, file=source, line=n, field=_field(loc)) for loc, n, m in duplicates
    ]

    def located(loc: Path_, message: str) -> EnvironmentFileError:
        return EnvironmentFileError(
            message, file=source, line=_line_of(lines, loc), field=_field(loc)
        )

    if not isinstance(data, dict):
        errors.append(
            EnvironmentFileError("the file must be a mapping of sections", file=source, line=1)
        )
        raise EnvironmentErrors(errors)
    data = {**data, "name": path.stem} if "name" not in data else data
    try:
        environment = Environment.model_validate(data)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            loc = _clean_loc(_without_tag(tuple(item["loc"])))
            errors.append(located(loc, _message(dict(item))))
        raise EnvironmentErrors(errors) from None
    errors.extend(located(loc, message) for loc, message in _cross_checks(environment, root))
    if errors:
        raise EnvironmentErrors(errors)
    environment._source = source  # the loader owns it: not a field a file could set
    return _anchored(environment, root)


def _anchored(environment: Environment, root: Path) -> Environment:
    """Resolve relative rule folders and Alertmanager files against the repository root.

    local.yaml names ``prometheus/rules``, the folder compose mounts: it must mean the
    repository's folder wherever the command runs from.
    """
    update: dict[str, Any] = {}
    for name in ("prometheus_rules", "loki_rules"):
        section = getattr(environment, name)
        if isinstance(section, RuleFiles) and not section.directory.is_absolute():
            update[name] = section.model_copy(update={"directory": root / section.directory})
    manager = environment.alertmanager
    if isinstance(manager, AlertmanagerFile) and not manager.path.is_absolute():
        update["alertmanager"] = manager.model_copy(update={"path": root / manager.path})
    return environment.model_copy(update=update) if update else environment


_UNIONS = frozenset({"prometheus_rules", "loki_rules", "alertmanager"})


def _without_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union member pydantic puts after a target section (``alertmanager.mimir.url``)."""
    if len(loc) > 1 and loc[0] in _UNIONS:
        return (loc[0], *loc[2:])
    return loc


def _cross_checks(environment: Environment, root: Path) -> list[tuple[Path_, str]]:
    """Check what needs the repository: SLOs that exist, thresholds on their buckets, retention
    that covers the SLO window."""
    if not environment.slos and environment.retention.metrics is None:
        return []
    try:
        loaded = load_slos(root / SLO_FILE, str(SLO_FILE))
    except SloError as error:
        return [((), f"cannot check the SLO overrides: {error}")]
    problems: list[tuple[Path_, str]] = []
    services = loaded.document.services
    for service, overrides in environment.slos.items():
        if service not in services:
            known = ", ".join(sorted(services))
            problems.append(
                (("slos", service), f"no service {service!r} in {SLO_FILE} (known: {known})")
            )
            continue
        for slo, override in overrides.items():
            if slo not in services[service]:
                known = ", ".join(sorted(services[service]))
                problems.append(
                    (
                        ("slos", service, slo),
                        f"{service} has no SLO {slo!r} in {SLO_FILE} (known: {known})",
                    )
                )
                continue
            # The same check as slos.yaml's own thresholds, located in this file: render would
            # otherwise find it in the merged text, whose lines are no file's.
            name = services[service][slo].indicator
            wrong = threshold_problem(name, loaded.document.indicators[name], override.threshold)
            if wrong is not None:
                problems.append((("slos", service, slo, "threshold"), f"{wrong} ({SLO_FILE})"))
    metrics = environment.retention.metrics
    window = loaded.document.window
    if metrics is not None and duration_seconds(metrics) < duration_seconds(window):
        problems.append(
            (
                ("retention", "metrics"),
                f"{metrics} is shorter than the SLO window ({window} in {SLO_FILE}): the error "
                "budget would be computed over missing data",
            )
        )
    return problems
