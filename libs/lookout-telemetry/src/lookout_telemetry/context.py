"""Per-request context shared by a service's middleware, the logs and the error reports.

A service's request middleware sets these; ``logs`` stamps them on every line and
``errortracking`` on every event.
"""

from contextvars import ContextVar

__all__ = ["request_id_var", "user_id_var"]

#: The request id of the request being served (taken from ``X-Request-ID`` or generated).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
#: The id of the logged-in user of the request being served, when there is one.
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)
