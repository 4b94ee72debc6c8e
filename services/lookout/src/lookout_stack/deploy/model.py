"""What every deploy target shares: credentials by reference, endpoints, changes, targets.

An environment file (``deploy/environments/<name>.yaml``) names where each kind of object goes;
the sections below are its target sections. Credentials are references only (``{env: NAME}``
or ``{file: PATH}``): a literal secret in the file is rejected when it is loaded, and a resolved
secret is never printed (``SecretRef.describe`` names where it comes from instead).

A ``Target`` compares what a rendered environment holds with what the live system holds and
returns the ``Change`` list that would make them equal; an empty list means in sync. Applying
every change of a plan and planning again gives an empty list (idempotence). A target only
deletes inside the scope it owns (its Grafana folder, its ruler namespace).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AlertmanagerApi",
    "AlertmanagerFile",
    "Auth",
    "Change",
    "ChangeKind",
    "DeployError",
    "GrafanaSection",
    "HttpEndpoint",
    "RuleFiles",
    "RulerApi",
    "SecretRef",
    "Target",
]


class DeployError(Exception):
    """A deploy step failed; the message says what, where, and what to do next."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Section):
    """A credential by reference: an environment variable or a file, never the value itself."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            msg = "give exactly one of `env: VARIABLE` or `file: PATH` (never the secret itself)"
            raise ValueError(msg)
        return self

    def describe(self) -> str:
        """Say where the secret comes from (safe to print)."""
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def resolve(self, where: str) -> str:
        """Return the secret; raise DeployError naming ``where`` and the reference if absent."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                msg = f"{where}: environment variable {self.env} is not set (export it, run again)"
                raise DeployError(msg)
            return value
        path = Path(str(self.file))
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as error:
            msg = f"{where}: cannot read secret file {self.file}: {error.strerror}"
            raise DeployError(msg) from error


class Auth(_Section):
    """A bearer token, or basic auth (a user name and a password reference)."""

    token: SecretRef | None = None
    username: str | None = None
    password: SecretRef | None = None

    @model_validator(mode="after")
    def _one_scheme(self) -> Auth:
        basic = self.username is not None or self.password is not None
        if self.token is not None and basic:
            raise ValueError("give either `token` or `username` and `password`, not both")
        if basic and (self.username is None or self.password is None):
            raise ValueError("basic auth needs both `username` and `password`")
        if self.token is None and not basic:
            raise ValueError("give `token`, or `username` and `password`")
        return self

    def headers(self, where: str) -> dict[str, str]:
        """Return the Authorization header (resolving the secret now)."""
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token.resolve(where + '.token')}"}
        password = self.password.resolve(where + ".password") if self.password else ""
        pair = f"{self.username}:{password}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in a URL: use `auth` with a reference")
    return value.rstrip("/")


class HttpEndpoint(_Section):
    """An HTTP API: its base URL, the tenant (``X-Scope-OrgID``), auth, TLS and timeout."""

    url: str
    tenant: str | None = None
    auth: Auth | None = None
    verify_tls: bool = True
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0

    _url = field_validator("url")(_check_url)

    def headers(self, where: str) -> dict[str, str]:
        """Return the tenant and auth headers for a request to this endpoint."""
        headers = {"X-Scope-OrgID": self.tenant} if self.tenant else {}
        if self.auth is not None:
            headers.update(self.auth.headers(where + ".auth"))
        return headers


class GrafanaSection(HttpEndpoint):
    """Grafana's HTTP API: dashboards go into one folder the deploy owns."""

    folder_uid: str = "lookout"
    folder_title: str = "Lookout"


class RulerApi(HttpEndpoint):
    """A ruler's HTTP API (Mimir's for Prometheus rules, Loki's for LogQL rules)."""

    kind: Literal["mimir", "loki"]
    #: The ruler namespace the deploy owns: one rule group file here is one group set there.
    namespace: str = "lookout"


class RuleFiles(_Section):
    """Rule files a Prometheus (or Loki) reads from a folder, reloaded after they are written."""

    kind: Literal["files"]
    directory: Path
    #: POST here after writing (``http://prometheus:9090/-/reload``); none: the reader polls.
    reload_url: str | None = None

    _reload = field_validator("reload_url")(lambda v: None if v is None else _check_url(v))


class AlertmanagerApi(HttpEndpoint):
    """Mimir's Alertmanager configuration API (``/api/v1/alerts``), per tenant."""

    kind: Literal["mimir"]


class AlertmanagerFile(_Section):
    """An Alertmanager that reads its configuration file, reloaded through ``/-/reload``."""

    kind: Literal["file"]
    path: Path
    reload_url: str | None = None

    _reload = field_validator("reload_url")(lambda v: None if v is None else _check_url(v))


ChangeKind = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Change:
    """One object to create, update or delete on a target, and how to do it."""

    #: The target's name, e.g. "grafana", "prometheus rules (mimir)", "alertmanager (file)".
    target: str
    kind: ChangeKind
    #: What the object is, readable: "dashboard lookout-overview in folder Lookout".
    object: str
    #: A unified diff, live -> desired ("" for a delete of something unreadable).
    diff: str
    #: Performs the change; raises DeployError saying what failed.
    apply: Callable[[], None]


class Target(Protocol):
    """One place objects are deployed to."""

    #: Readable name, used in progress lines and the diff's headings.
    name: str

    def plan(self) -> list[Change]:
        """Read the live state and return the changes that make it equal the rendered one."""
        ...

    def finish(self) -> None:
        """Run after this target's changes were applied (reload a file reader); may be a no-op."""
        ...
