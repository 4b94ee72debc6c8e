"""Protocol-level test doubles of the documented HTTP APIs the deploy targets call.

These are doubles of the DOCUMENTED APIs, not the products: small in-process HTTP servers on
127.0.0.1 that implement only the endpoints our client code calls, with the request and
answer shapes, status codes and error bodies the references give. They test our client code
(what it sends, how it reads answers, how it maps errors); they prove nothing about Grafana,
Mimir or Loki themselves. Written from:

* Grafana 13 (legacy ``/api`` routes, still served):
  https://grafana.com/docs/grafana/v13.2/developer-resources/api-reference/http-api/api-legacy/folder/
  .../api-legacy/data_source/, .../api-legacy/dashboard/, .../api-legacy/folder_dashboard_search/
* Mimir ruler and Alertmanager configuration API:
  https://grafana.com/docs/mimir/latest/references/http-api/#ruler and
  #set-alertmanager-configuration (empty namespace: 200 ``{}``, per Mimir's pkg/ruler/api.go)
* Loki 3.7 ruler API: https://grafana.com/docs/loki/v3.7.x/reference/loki-http-api/#ruler
  (empty namespace: 404 "no rule groups found", as Loki's ruler answers)

What the doubles do NOT prove (only the real products or their images can):
* that Grafana 13 still serves these legacy routes as documented, stores a dashboard's JSON
  as posted and returns it unchanged (unified storage could add or reorder fields, which
  would show as a diff on every run), and applies RBAC, org and nested-folder rules;
* that Mimir accepts the PromQL, limits (rules per group, groups per tenant) and protected
  namespaces it checks, and prints groups back as Loki's ruler does (the shared rulefmt code
  is exercised against the real Loki in test_deploy_targets_loki.py);
* that Mimir's Alertmanager validates and stores a configuration and its templates as the
  double does; TLS, proxies and real credentials.

Every double records each request (method, path, headers, body) and checks the headers it
is told to expect (auth, tenant), answering 401 as the products do when they are wrong.
``fail`` makes the next matching request fail with a given status and body.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

__all__ = [
    "GrafanaDouble",
    "MimirAlertmanagerDouble",
    "Recorded",
    "RulerDouble",
    "serve",
]


@dataclass
class Recorded:
    """One request a double received."""

    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Answer:
    """What a route answers: status, body (JSON-encoded unless text), content type."""

    status: int
    body: Any = None
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class _Double:
    expected_headers: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    failures: list[tuple[str, str, Answer]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, method: str, path_prefix: str, status: int, body: Any) -> None:
        """Make the next ``method`` request whose path starts with ``path_prefix`` fail."""
        content = "text/plain" if isinstance(body, str) else "application/json"
        self.failures.append((method, path_prefix, Answer(status, body, content)))

    def unauthorised(self) -> Answer:
        return Answer(401, {"message": "Unauthorized"})

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: str) -> Answer:
        raise NotImplementedError

    def dispatch(self, record: Recorded, query: dict[str, list[str]]) -> Answer:
        with self.lock:
            self.requests.append(record)
            for name, value in self.expected_headers.items():
                if record.headers.get(name.lower()) != value:
                    return self.unauthorised()
            for index, (method, prefix, answer) in enumerate(self.failures):
                if record.method == method and record.path.startswith(prefix):
                    del self.failures[index]
                    return answer
            return self.handle(record.method, record.path, query, record.body)


@contextlib.contextmanager
def serve(double: _Double) -> Iterator[str]:
    """Serve ``double`` on a free loopback port; yield its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            record = Recorded(
                method=self.command,
                path=parts.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            answer = double.dispatch(record, parse_qs(parts.query))
            payload = answer.encoded()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _segments(path: str, prefix: str) -> list[str]:
    return [unquote(s) for s in path.removeprefix(prefix).strip("/").split("/") if s]


@dataclass
class GrafanaDouble(_Double):
    """Grafana's folder, data source, search and dashboard endpoints (legacy ``/api``)."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: secureJsonData as received (Grafana encrypts it and never returns it).
    secure: dict[str, dict[str, str]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _datasource_view(self, uid: str) -> dict[str, Any]:
        stored = dict(self.datasources[uid])
        stored["secureJsonFields"] = dict.fromkeys(self.secure.get(uid, {}), True)
        return stored

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: str) -> Answer:
        data = json.loads(body) if body else {}
        if path.startswith("/api/folders"):
            return self._folders(method, _segments(path, "/api/folders"), data)
        if path.startswith("/api/datasources"):
            return self._datasources(method, _segments(path, "/api/datasources"), data)
        if path == "/api/search" and method == "GET":
            wanted = set(query.get("folderUIDs", []))
            return Answer(
                200,
                [
                    {
                        "uid": uid,
                        "title": d["dashboard"].get("title", ""),
                        "type": "dash-db",
                        # Grafana's search hit has `folderUid,omitempty`: absent at the root.
                        **({"folderUid": d["folderUid"]} if d["folderUid"] else {}),
                    }
                    for uid, d in self.dashboards.items()
                    if not wanted or d["folderUid"] in wanted
                ],
            )
        if path.startswith("/api/dashboards"):
            return self._dashboards(method, _segments(path, "/api/dashboards"), data)
        return Answer(404, {"message": "Not found"})

    def _folders(  # noqa: PLR0911 (one answer per documented case)
        self, method: str, parts: list[str], data: dict[str, Any]
    ) -> Answer:
        if method == "POST" and not parts:
            uid = data.get("uid") or f"f{self._id()}"
            if uid in self.folders:
                return Answer(409, {"message": "a folder with the same uid already exists"})
            self.folders[uid] = {"id": self._id(), "uid": uid, "title": data["title"], "version": 1}
            return Answer(200, self.folders[uid])
        if len(parts) != 1:
            return Answer(404, {"message": "Not found"})
        folder = self.folders.get(parts[0])
        if folder is None:
            return Answer(404, {"message": "folder not found", "status": "not-found"})
        if method == "GET":
            return Answer(200, folder)
        if method == "PUT":
            if not data.get("overwrite") and data.get("version") != folder["version"]:
                return Answer(412, {"message": "the folder has been changed by someone else"})
            folder.update(title=data.get("title", folder["title"]), version=folder["version"] + 1)
            return Answer(200, folder)
        return Answer(405, {"message": "Method not allowed"})

    def _datasources(  # noqa: PLR0911 (one answer per documented case)
        self, method: str, parts: list[str], data: dict[str, Any]
    ) -> Answer:
        if method == "POST" and not parts:
            if any(d["name"] == data.get("name") for d in self.datasources.values()):
                return Answer(409, {"message": "data source with the same name already exists"})
            uid = data.get("uid") or f"d{self._id()}"
            secure = data.pop("secureJsonData", None) or {}
            self.datasources[uid] = {**data, "id": self._id(), "uid": uid, "orgId": 1, "version": 1}
            self.secure[uid] = secure
            view = self._datasource_view(uid)
            return Answer(
                200,
                {
                    "datasource": view,
                    "id": view["id"],
                    "message": "Datasource added",
                    "name": view["name"],
                },
            )
        if len(parts) != 2 or parts[0] != "uid":
            return Answer(404, {"message": "Not found"})
        uid = parts[1]
        if uid not in self.datasources:
            return Answer(404, {"message": "Data source not found"})
        if method == "GET":
            return Answer(200, self._datasource_view(uid))
        if method == "PUT":
            secure = data.pop("secureJsonData", None)
            if secure is not None:  # absent: Grafana keeps the stored secure values
                self.secure[uid] = secure
            old = self.datasources[uid]
            self.datasources[uid] = {
                **data,
                "id": old["id"],
                "uid": uid,
                "orgId": 1,
                "version": old["version"] + 1,
            }
            return Answer(
                200, {"datasource": self._datasource_view(uid), "message": "Datasource updated"}
            )
        return Answer(405, {"message": "Method not allowed"})

    def _dashboards(  # noqa: PLR0911 (one answer per documented case)
        self, method: str, parts: list[str], data: dict[str, Any]
    ) -> Answer:
        if method == "POST" and parts == ["db"]:
            model = dict(data["dashboard"])
            uid = model.get("uid") or f"b{self._id()}"
            folder = data.get("folderUid", "")
            if folder and folder not in self.folders:
                return Answer(400, {"message": "folder not found", "status": "not-found"})
            old = self.dashboards.get(uid)
            if old is not None and not data.get("overwrite"):
                return Answer(
                    412,
                    {
                        "message": "The dashboard has been changed by someone else",
                        "status": "version-mismatch",
                    },
                )
            version = 1 if old is None else old["dashboard"]["version"] + 1
            model.update(uid=uid, id=old["dashboard"]["id"] if old else self._id(), version=version)
            self.dashboards[uid] = {"dashboard": model, "folderUid": folder}
            return Answer(
                200,
                {
                    "id": model["id"],
                    "uid": uid,
                    "url": f"/d/{uid}",
                    "status": "success",
                    "version": version,
                },
            )
        if len(parts) != 2 or parts[0] != "uid":
            return Answer(404, {"message": "Not found"})
        stored = self.dashboards.get(parts[1])
        if stored is None:
            return Answer(404, {"message": "Dashboard not found"})
        if method == "GET":
            folder = stored["folderUid"]
            meta = {
                "folderUid": folder,
                "folderTitle": self.folders.get(folder, {}).get("title", "Dashboards"),
                "version": stored["dashboard"]["version"],
            }
            return Answer(200, {"dashboard": stored["dashboard"], "meta": meta})
        if method == "DELETE":
            del self.dashboards[parts[1]]
            title = stored["dashboard"].get("title", "")
            return Answer(
                200,
                {
                    "title": title,
                    "message": f"Dashboard {title} deleted",
                    "id": stored["dashboard"]["id"],
                },
            )
        return Answer(405, {"message": "Method not allowed"})


@dataclass
class RulerDouble(_Double):
    """A ruler's configuration API (Mimir's or Loki's): rule groups per tenant and namespace."""

    kind: str = "mimir"
    #: tenant -> namespace -> group name -> group (as parsed from the posted YAML).
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return "/prometheus/config/v1/rules" if self.kind == "mimir" else "/loki/api/v1/rules"

    def unauthorised(self) -> Answer:
        return Answer(401, "no org id\n", "text/plain")

    def handle(  # noqa: PLR0911 (one answer per documented case)
        self, method: str, path: str, query: dict[str, list[str]], body: str
    ) -> Answer:
        if not path.startswith(self.prefix):
            return Answer(404, "404 page not found\n", "text/plain")
        tenant = self.requests[-1].headers.get("x-scope-orgid", "anonymous")
        namespaces = self.groups.setdefault(tenant, {})
        parts = _segments(path, self.prefix)
        if method == "GET" and len(parts) == 1:
            listed = list(namespaces.get(parts[0], {}).values())
            if not listed:
                if self.kind == "loki":
                    return Answer(404, "no rule groups found\n", "text/plain")
                return Answer(200, "{}\n", "application/yaml")
            return Answer(200, yaml.safe_dump({parts[0]: listed}), "application/yaml")
        if method == "POST" and len(parts) == 1:
            try:
                group = yaml.safe_load(body)
            except yaml.YAMLError:
                group = None
            if not isinstance(group, dict) or not group.get("name") or "groups" in group:
                return Answer(400, "unable to decode rule group\n", "text/plain")
            namespaces.setdefault(parts[0], {})[group["name"]] = group
            return Answer(202, {"status": "success", "data": None, "errorType": "", "error": ""})
        if method == "DELETE" and len(parts) == 2:
            if parts[1] not in namespaces.get(parts[0], {}):
                return Answer(404, "group does not exist\n", "text/plain")
            del namespaces[parts[0]][parts[1]]
            return Answer(202, {"status": "success", "data": None, "errorType": "", "error": ""})
        return Answer(405, "method not allowed\n", "text/plain")


@dataclass
class MimirAlertmanagerDouble(_Double):
    """Mimir's per-tenant Alertmanager configuration endpoint, ``/api/v1/alerts``."""

    #: tenant -> {"template_files": {...}, "alertmanager_config": text}
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def unauthorised(self) -> Answer:
        return Answer(401, "no org id\n", "text/plain")

    def handle(  # noqa: PLR0911 (one answer per documented case)
        self, method: str, path: str, query: dict[str, list[str]], body: str
    ) -> Answer:
        if path != "/api/v1/alerts":
            return Answer(404, "404 page not found\n", "text/plain")
        tenant = self.requests[-1].headers.get("x-scope-orgid", "anonymous")
        if method == "GET":
            stored = self.configs.get(tenant)
            if stored is None:
                return Answer(404, "alertmanager storage object not found\n", "text/plain")
            return Answer(200, yaml.safe_dump(stored), "application/yaml")
        if method == "POST":
            try:
                document = yaml.safe_load(body)
                yaml.safe_load(document["alertmanager_config"])
            except (yaml.YAMLError, KeyError, TypeError) as error:
                return Answer(
                    400, f"error marshalling YAML Alertmanager config: {error}\n", "text/plain"
                )
            templates = document.get("template_files") or {}
            if any("/" in name for name in templates):
                return Answer(
                    400,
                    "error validating Alertmanager config: invalid template name\n",
                    "text/plain",
                )
            self.configs[tenant] = {
                "template_files": templates,
                "alertmanager_config": document["alertmanager_config"],
            }
            return Answer(201, None, "text/plain")
        return Answer(405, "method not allowed\n", "text/plain")
