"""Provision Lookout's Bugsink: one team, one project per service, each with a KNOWN DSN.

Bugsink makes up a project's id and public key when a person creates it in the UI, so no
service could be configured before someone had clicked. Here both come from the environment,
so every service's ``SENTRY_DSN`` in docker-compose.yml is known before Bugsink starts:
``http://<public key>@bugsink:8000/<project id>``.

Runs inside Bugsink's Django (its models, its database settings), as compose's one-shot
``bugsink-provision`` service does and the tests do against the PyPI Bugsink:

    bugsink-manage shell -c "import runpy; runpy.run_path('provision.py', run_name='__main__')"

Environment:

* ``BUGSINK_TEAM``: the team's name (default ``lookout``);
* ``BUGSINK_PROJECTS``: comma-separated ``<project id>:<name>:<public key>``, the key 32 hex
  digits (a UUID without dashes), e.g. ``1:shop:0123...cdef, 2:payments:...``;
* ``BUGSINK_ADMIN_EMAIL`` (optional): that user, when it exists, joins the team as its admin.

Idempotent: a second run finds everything in place and changes nothing. A project id held by a
project of another name is an error (exit 2, naming it) rather than a silent takeover; so is a
malformed entry. Afterwards the project id sequence is moved past the ids used, so projects
made later in the UI do not collide with these. Prints one JSON line: ``{"projects": {name:
{"id": ..., "key": ...}}}``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid

__all__ = ["main", "parse_projects"]

_ENTRY = re.compile(r"^(?P<id>[1-9]\d*):(?P<name>[a-z0-9][a-z0-9-]*):(?P<key>[0-9a-f]{32})$")


class ProvisionError(ValueError):
    """A bad value in the environment; the message names the variable and the entry."""


def parse_projects(text: str) -> list[tuple[int, str, str]]:
    """Return (id, name, key) per entry of BUGSINK_PROJECTS; raise ProvisionError if bad."""
    entries = [part.strip() for part in text.split(",") if part.strip()]
    if not entries:
        msg = "BUGSINK_PROJECTS is empty: give <project id>:<name>:<public key>, comma-separated"
        raise ProvisionError(msg)
    projects: list[tuple[int, str, str]] = []
    for position, entry in enumerate(entries, start=1):
        found = _ENTRY.match(entry)
        if found is None:
            msg = (
                f"BUGSINK_PROJECTS entry {position} ({entry.split(':')[:2]}): expected "
                "<project id>:<name>:<public key>, the id a positive integer, the name "
                "lowercase letters, digits and '-', the key 32 hex digits"
            )
            raise ProvisionError(msg)
        projects.append((int(found["id"]), found["name"], found["key"]))
    for label, values in (("id", [p[0] for p in projects]), ("name", [p[1] for p in projects])):
        duplicates = sorted({str(v) for v in values if values.count(v) > 1})
        if duplicates:
            msg = f"BUGSINK_PROJECTS: {label} {', '.join(duplicates)} appears more than once"
            raise ProvisionError(msg)
    return projects


def _provision(
    team_name: str, projects: list[tuple[int, str, str]], admin: str
) -> dict[str, object]:
    """Create or check the team and projects inside Bugsink's Django; return what is there."""
    from django.contrib.auth import get_user_model  # noqa: PLC0415
    from django.core.management.color import no_style  # noqa: PLC0415
    from django.db import connection, transaction  # noqa: PLC0415
    from projects.models import Project  # noqa: PLC0415
    from teams.models import Team, TeamMembership, TeamRole  # noqa: PLC0415

    with transaction.atomic():
        team, _ = Team.objects.get_or_create(name=team_name)
        for project_id, name, key in projects:
            project = Project.objects.filter(pk=project_id).first()
            if project is None:
                project = Project(pk=project_id, name=name, team=team, sentry_key=uuid.UUID(key))
                project.save()
            elif project.name != name:
                msg = (
                    f"BUGSINK_PROJECTS: project id {project_id} belongs to {project.name!r}, "
                    f"not {name!r}; pick a free id or rename that project in Bugsink"
                )
                raise ProvisionError(msg)
            elif project.sentry_key.hex != key or project.team_id != team.pk:
                # The environment is the source of truth: a rotated key takes effect here.
                Project.objects.filter(pk=project_id).update(sentry_key=uuid.UUID(key), team=team)
        if admin:
            user = get_user_model().objects.filter(username=admin).first()
            if user is not None:
                TeamMembership.objects.get_or_create(
                    team=team, user=user, defaults={"role": TeamRole.ADMIN, "accepted": True}
                )
    # Explicit ids leave Postgres' sequence behind: move it past them (no-op on SQLite).
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [Project]):
            cursor.execute(statement)
    return {"projects": {name: {"id": pid, "key": key} for pid, name, key in projects}}


def main() -> int:
    """Provision from the environment; print the result as one JSON line; 2 on bad input."""
    try:
        projects = parse_projects(os.environ.get("BUGSINK_PROJECTS", ""))
        result = _provision(
            os.environ.get("BUGSINK_TEAM", "").strip() or "lookout",
            projects,
            os.environ.get("BUGSINK_ADMIN_EMAIL", "").strip(),
        )
    except ProvisionError as error:
        print(f"bugsink provision: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    code = main()
    if code:
        raise SystemExit(code)
