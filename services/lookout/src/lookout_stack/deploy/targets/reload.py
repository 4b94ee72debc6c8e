"""Reload a file reader (Prometheus, Alertmanager) after its files changed, or put them back.

Both readers load their files on ``POST /-/reload`` and answer 200 once the new files are
running, or 500 with the reason when they keep the old ones (Prometheus needs
``--web.enable-lifecycle``). A refusal leaves the reader running the previous files, so the
folder is put back to match them (``OwnedDirectory.rollback``) and reloaded again: a restart
later then loads what was running, not the refused files.
https://prometheus.io/docs/prometheus/latest/management_api/#reload and
https://prometheus.io/docs/alerting/latest/management_api/#reload
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

from lookout_stack.deploy.model import DeployError
from lookout_stack.deploy.targets.files import OwnedDirectory
from lookout_stack.deploy.targets.httpapi import api_message

__all__ = ["RELOAD_TIMEOUT", "ReloadRefused", "api_base", "post_reload", "reload_or_restore"]

#: Seconds a reload may take: the reader re-reads and checks every file before it answers.
RELOAD_TIMEOUT = 60.0


class ReloadRefused(DeployError):
    """The reader did not take the new files, and the folder was put back as it was.

    ``restored`` tells the apply report that the target's written changes are undone: they
    are listed as rolled back, not as applied.
    """

    restored = True


def api_base(reload_url: str) -> str:
    """Return the reader's base URL from its reload URL (``.../-/reload`` removed)."""
    parts = urlsplit(reload_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.removesuffix("/-/reload"), "", ""))


def post_reload(url: str) -> str | None:
    """POST the reload URL; return None on success, else what went wrong (readable)."""
    path = urlsplit(url).path
    try:
        response = httpx.post(url, timeout=RELOAD_TIMEOUT)
    except httpx.HTTPError as error:
        return f"POST {path} failed: {type(error).__name__}"
    if response.is_success:
        return None
    return f"POST {path} answered {response.status_code}: {api_message(response.text)}"


def reload_or_restore(folder: OwnedDirectory, url: str | None, target: str, check: str) -> bool:
    """Reload after the folder's changes; on refusal restore the files, reload, raise.

    Returns whether a reload happened (False: nothing changed, or no ``url``: the reader
    polls). ``check`` says how a person checks the files ("`promtool check rules`").
    """
    written = [path.name for path in folder.touched]
    if not written or url is None:
        folder.commit()
        return False
    error = post_reload(url)
    if error is None:
        folder.commit()
        return True
    folder.rollback()
    again = post_reload(url)
    state = (
        "the previous files are back and running"
        if again is None
        else f"the previous files are back, but reloading them failed too: {again}"
    )
    if " answered " in error:
        cause = f"the reader refused the new files ({', '.join(written)}): {error}"
        advice = f"Check them with {check}; the reader's log names the line."
    else:
        cause = (
            f"the reader could not be reached to load the new files ({', '.join(written)}): {error}"
        )
        advice = "Check that the reader runs and that reload_url points at it."
    raise ReloadRefused(f"{target}: {cause}; {state}. {advice}")
