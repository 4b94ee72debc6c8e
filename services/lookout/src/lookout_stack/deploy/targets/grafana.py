"""Grafana: data sources by uid, the deploy's folder, and the dashboards in it.

Through grafana-client (a kept client of Grafana's HTTP API) on Grafana's ``/api`` routes.
Grafana 13 documents them as legacy but "not being disabled and remain fully accessible";
https://grafana.com/docs/grafana/v13.2/developer-resources/api-reference/http-api/api-legacy/
  folders:      GET /api/folders/:uid, POST /api/folders {uid, title},
                PUT /api/folders/:uid {title, overwrite}
  data sources: GET /api/datasources/uid/:uid, POST /api/datasources,
                PUT /api/datasources/uid/:uid
  dashboards:   GET /api/search?type=dash-db&folderUIDs=:uid, GET /api/dashboards/uid/:uid,
                POST /api/dashboards/db {dashboard, folderUid, overwrite, message},
                DELETE /api/dashboards/uid/:uid

Changes come in a safe order: data sources first (dashboards refer to them by uid), then
the folder, then dashboards, then deletes of dashboards the render no longer has. Only
dashboards in the deploy's folder are ever deleted; data sources are never deleted.

Data sources compare the fields provisioning sets (name, type, access, url, user, database,
basicAuth, basicAuthUser, withCredentials, isDefault, jsonData), with Grafana's defaults
filled in on both sides. ``secureJsonData`` cannot be read back (Grafana answers only which
keys are set, ``secureJsonFields``): it is not compared, is re-sent on every create and
update, and a diff names where each value comes from, never the value. ``editable`` and
``orgId`` have no place in the API (the token's organisation is used) and are skipped.
Dashboards compare their JSON without ``id``, ``version`` and ``iteration`` (Grafana's own
bookkeeping).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import niquests
import niquests.auth
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException

from lookout_stack.deploy.model import Change, DeployError, GrafanaSection
from lookout_stack.deploy.targets import rendered as rendered_folder
from lookout_stack.deploy.targets.provisioning import (
    describe_references,
    expand_all,
    is_secret_reference,
)
from lookout_stack.deploy.targets.textdiff import dump_json, dump_yaml, unified

__all__ = ["DATASOURCE_FIELDS", "GrafanaTarget", "normalise_dashboard"]

#: The data source fields provisioning sets and the API returns, with Grafana's defaults.
DATASOURCE_FIELDS: dict[str, Any] = {
    "name": "",
    "type": "",
    "access": "proxy",
    "url": "",
    "user": "",
    "database": "",
    "basicAuth": False,
    "basicAuthUser": "",
    "withCredentials": False,
    "isDefault": False,
    "jsonData": {},
}
_DASHBOARD_BOOKKEEPING = ("id", "version", "iteration")


def normalise_dashboard(model: dict[str, Any]) -> dict[str, Any]:
    """Return a dashboard's JSON without Grafana's bookkeeping fields."""
    return {k: v for k, v in model.items() if k not in _DASHBOARD_BOOKKEEPING}


def _normalise_datasource(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        key: default if entry.get(key) is None else entry[key]
        for key, default in DATASOURCE_FIELDS.items()
    }


def _masked(shown: Any, raw: Any, expanded: Any) -> Any:
    """Replace, in ``shown``, every value whose rendered source reads a secret."""
    if isinstance(raw, str) and is_secret_reference(raw):
        safe = describe_references(raw)
        return safe if shown == expanded else f"<another value, hidden; rendered: {safe[1:]}"
    if isinstance(shown, dict) and isinstance(raw, dict):
        other = expanded if isinstance(expanded, dict) else {}
        return {k: _masked(v, raw.get(k), other.get(k)) for k, v in shown.items()}
    if isinstance(shown, list) and isinstance(raw, list):
        items = expanded if isinstance(expanded, list) else []
        return [
            _masked(v, raw[i] if i < len(raw) else None, items[i] if i < len(items) else None)
            for i, v in enumerate(shown)
        ]
    return shown


class _Headers(niquests.auth.AuthBase):
    """Adds the endpoint's auth (and tenant) headers; its repr never shows them."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def __call__(self, request: Any) -> Any:
        request.headers.update(self._headers)
        return request

    def __repr__(self) -> str:
        return "<headers hidden>"


class GrafanaTarget:
    """Data sources, the folder and its dashboards of a rendered folder, in one Grafana."""

    name = "grafana"

    def __init__(self, section: GrafanaSection, rendered: Path) -> None:
        self._section = section
        self._dashboards = rendered_folder.dashboards(rendered)
        self._datasources = rendered_folder.datasources(rendered)
        self._client: GrafanaApi | None = None

    def _api(self) -> GrafanaApi:
        if self._client is None:
            parts = urlsplit(self._section.url)
            prefix = parts.path.strip("/")
            self._client = GrafanaApi(
                auth=_Headers(self._section.headers("grafana")),
                host=parts.hostname,
                port=parts.port,
                url_path_prefix=f"{prefix}/" if prefix else "",
                protocol=parts.scheme,
                verify=self._section.verify_tls,
                timeout=self._section.timeout_seconds,
            )
        return self._client

    def _call(
        self, method: str, path: str, call: Callable[..., Any], *args: Any, missing_ok: bool = False
    ) -> Any:
        """Run one API call; None for a 404 when ``missing_ok``; any failure -> DeployError."""
        try:
            return call(*args)
        except GrafanaException as error:
            if missing_ok and error.status_code == 404:
                return None
            body = error.response
            message = body.get("message") if isinstance(body, dict) else None
            text = str(message or body or error.message)
            if error.status_code == 0:
                raise DeployError(f"grafana: {method} {path} failed: {text}") from None
            msg = f"grafana: {method} {path} answered {error.status_code}: {text[:400]}"
            raise DeployError(msg) from None
        except niquests.exceptions.RequestException as error:
            msg = (
                f"grafana: {method} {path} failed: {type(error).__name__}"
                f" ({self._section.url} unreachable or too slow?)"
            )
            raise DeployError(msg) from None

    # -- plan --------------------------------------------------------------------------------

    def plan(self) -> list[Change]:
        """Data sources, then the folder, then dashboards, then dashboard deletes."""
        changes = [c for p, entry in self._datasources for c in self._plan_datasource(p, entry)]
        folder_exists, folder_changes = self._plan_folder()
        changes += folder_changes
        changes += self._plan_dashboards(folder_exists)
        return changes

    def _plan_datasource(self, path: Path, entry: dict[str, Any]) -> list[Change]:
        uid = entry["uid"]
        where = f"{path}: data source {uid}"
        raw = _normalise_datasource(entry)
        # secureJsonData is expanded only when applied: a plan never holds a secret value.
        plain = {k: v for k, v in entry.items() if k != "secureJsonData"}
        desired = _normalise_datasource(expand_all(plain, where))
        secure_raw: dict[str, Any] = dict(entry.get("secureJsonData") or {})
        api_path = f"/api/datasources/uid/{uid}"
        get = self._api().datasource.get_datasource_by_uid
        live = self._call("GET", api_path, get, uid, missing_ok=True)
        set_keys = {k for k, v in ((live or {}).get("secureJsonFields") or {}).items() if v}
        unset = sorted(k for k in secure_raw if k not in set_keys)
        current = None if live is None else _normalise_datasource(live)
        if current == desired and not unset:
            return []
        notes = "".join(
            f"# secureJsonData.{key}: {describe_references(str(value))}; sent on every create"
            " and update, not compared (Grafana never returns it)"
            + ("; not set in Grafana yet" if key in unset and live is not None else "")
            + "\n"
            for key, value in sorted(secure_raw.items())
        )
        before = None if current is None else dump_yaml(_masked(current, raw, desired))
        after = dump_yaml(_masked(desired, raw, desired))
        diff = notes + unified(before, after, f"datasource/{uid}")
        return [
            Change(
                target=self.name,
                kind="create" if live is None else "update",
                object=f"data source {entry['name']} (uid {uid})",
                diff=diff,
                apply=partial(self._save_datasource, uid, desired, secure_raw, where, live is None),
            )
        ]

    def _save_datasource(
        self,
        uid: str,
        desired: dict[str, Any],
        secure_raw: dict[str, Any],
        where: str,
        create: bool,
    ) -> None:
        payload = {**desired, "uid": uid}
        if secure_raw:
            # Expanded only now, at apply time: a plan never holds a secret value.
            payload["secureJsonData"] = expand_all(secure_raw, where + ".secureJsonData")
        api = self._api().datasource
        if create:
            self._call("POST", "/api/datasources", api.create_datasource, payload)
        else:
            self._call(
                "PUT", f"/api/datasources/uid/{uid}", api.update_datasource_by_uid, uid, payload
            )

    def _plan_folder(self) -> tuple[bool, list[Change]]:
        uid, title = self._section.folder_uid, self._section.folder_title
        api_path = f"/api/folders/{uid}"
        live = self._call("GET", api_path, self._api().folder.get_folder, uid, missing_ok=True)
        if live is not None and live.get("title") == title:
            return True, []
        before = None if live is None else dump_yaml({"title": live.get("title"), "uid": uid})
        diff = unified(before, dump_yaml({"title": title, "uid": uid}), f"folder/{uid}")
        folders = self._api().folder
        if live is None:
            apply = partial(self._call, "POST", "/api/folders", folders.create_folder, title, uid)
        else:
            update = partial(folders.update_folder, uid, title=title, overwrite=True)
            apply = partial(self._call, "PUT", api_path, update)
        change = Change(
            target=self.name,
            kind="create" if live is None else "update",
            object=f"folder {title} (uid {uid})",
            diff=diff,
            apply=apply,
        )
        return live is not None, [change]

    def _plan_dashboards(self, folder_exists: bool) -> list[Change]:
        folder_uid, title = self._section.folder_uid, self._section.folder_title
        changes: list[Change] = []
        for uid, dashboard in self._dashboards.items():
            api_path = f"/api/dashboards/uid/{uid}"
            get = self._api().dashboard.get_dashboard
            live = self._call("GET", api_path, get, uid, missing_ok=True)
            desired = normalise_dashboard(dashboard.model)
            current = None if live is None else normalise_dashboard(live.get("dashboard") or {})
            live_folder = None if live is None else (live.get("meta") or {}).get("folderUid", "")
            if current == desired and live_folder == folder_uid:
                continue
            note = ""
            if live is not None and live_folder != folder_uid:
                note = f"# moves from folder {live_folder or '(root)'!r} to {folder_uid!r}\n"
            before = None if current is None else dump_json(current)
            changes.append(
                Change(
                    target=self.name,
                    kind="create" if live is None else "update",
                    object=f"dashboard {uid} ({desired.get('title', '')}) in folder {title}",
                    diff=note + unified(before, dump_json(desired), f"dashboards/{uid}.json"),
                    apply=partial(self._save_dashboard, desired),
                )
            )
        if folder_exists:
            changes += self._plan_dashboard_deletes()
        return changes

    def _save_dashboard(self, model: dict[str, Any]) -> None:
        body = {
            # id null + overwrite: create, or replace the dashboard with this uid.
            "dashboard": {**model, "id": None},
            "folderUid": self._section.folder_uid,
            "overwrite": True,
            "message": "lookout apply",
        }
        self._call("POST", "/api/dashboards/db", self._api().dashboard.update_dashboard, body)

    def _plan_dashboard_deletes(self) -> list[Change]:
        folder_uid, title = self._section.folder_uid, self._section.folder_title
        search = partial(
            self._api().search.search_dashboards, type_="dash-db", folder_uids=folder_uid
        )
        hits = self._call("GET", "/api/search", search)
        changes: list[Change] = []
        for hit in hits or []:
            uid = hit.get("uid")
            # Only what search says is in our folder (nested folders' dashboards are not). A hit
            # at the root has no folderUid (omitempty): never ours, whatever the filter did.
            if not uid or uid in self._dashboards or hit.get("folderUid") != folder_uid:
                continue
            api_path = f"/api/dashboards/uid/{uid}"
            get = self._api().dashboard.get_dashboard
            live = self._call("GET", api_path, get, uid, missing_ok=True)
            if live is None:
                continue
            model = normalise_dashboard(live.get("dashboard") or {})
            delete = self._api().dashboard.delete_dashboard
            changes.append(
                Change(
                    target=self.name,
                    kind="delete",
                    object=f"dashboard {uid} ({hit.get('title', '')}) in folder {title}",
                    diff=unified(dump_json(model), None, f"dashboards/{uid}.json"),
                    apply=partial(self._call, "DELETE", api_path, delete, uid),
                )
            )
        return changes

    def finish(self) -> None:
        """Nothing to reload: Grafana serves what the API stored; close the session."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.client.s.close()
            self._client = None
