"""Poll a real API until the data is there, failing with the last thing seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["PollTimeout", "poll_until"]

T = TypeVar("T")


class PollTimeout(AssertionError):
    """The condition did not hold before the deadline; the message has the last error seen."""


def poll_until(
    check: Callable[[], T | None],
    description: str,
    timeout: float,
    interval: float = 0.5,
) -> T:
    """Call ``check`` until it returns a truthy value or raises nothing; return that value.

    ``check`` may raise (an HTTP error, an assertion) while the data is not there yet: the
    last exception or falsy value is reported when ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    last: str = "no attempt finished"
    while True:
        try:
            value = check()
        except Exception as exc:  # any failure of a probe means "not yet"
            last = f"{type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = f"returned {value!r}"
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout:.0f} s waiting for {description}; last: {last}"
            raise PollTimeout(msg)
        time.sleep(interval)
