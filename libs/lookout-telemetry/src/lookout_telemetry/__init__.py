"""Lookout's shared telemetry: what every Python service of ours does the same way.

* ``scrub``: the one scrubber for secrets and personal data (logs and error events alike);
* ``logs``: JSON logs on stdout, one event per line, scrubbed, with trace and request ids;
* ``errortracking``: sentry-sdk (on only with a DSN) and the hooks for every escape path;
* ``tasks``: background tasks whose failures are logged and reported;
* ``context``: the request id and user id of the request being served.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
