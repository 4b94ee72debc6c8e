"""Client classes for metrics: browser family, OS family, device class, region.

The User-Agent is parsed with ua-parser (its Rust regex engine, and an LRU cache: clients
repeat), then each field is mapped onto a short allow-list with ``other``, so a client
sending made-up User-Agents cannot add series. The region comes from a header that a
trusted proxy sets (``DEMO_REGION_HEADER``, for example ``CloudFront-Viewer-Country`` or
``X-Region``), mapped onto ``DEMO_REGIONS`` (else ``other``; ``unknown`` when absent).
Never trust a client-controlled header for anything but these labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse

__all__ = ["BROWSERS", "DEVICE_CLASSES", "OPERATING_SYSTEMS", "ClientClass", "ClientClassifier"]

#: ua-parser family -> label; anything else is "other".
BROWSERS = {
    "Chrome": "chrome",
    "Chrome Mobile": "chrome",
    "Chrome Mobile iOS": "chrome",
    "Chromium": "chrome",
    "Firefox": "firefox",
    "Firefox Mobile": "firefox",
    "Firefox iOS": "firefox",
    "Safari": "safari",
    "Mobile Safari": "safari",
    "Mobile Safari UI/WKWebView": "safari",
    "Edge": "edge",
    "Edge Mobile": "edge",
    "Opera": "opera",
    "Samsung Internet": "samsung",
}
OPERATING_SYSTEMS = {
    "Windows": "windows",
    "Mac OS X": "macos",
    "iOS": "ios",
    "Android": "android",
    "Linux": "linux",
    "Ubuntu": "linux",
    "Fedora": "linux",
    "Chrome OS": "chromeos",
}
DEVICE_CLASSES = ("desktop", "mobile", "tablet", "bot", "other")
#: User-Agents longer than this are classified by their start only.
_MAX_UA = 512


@dataclass(frozen=True)
class ClientClass:
    """The bounded labels of one client."""

    browser: str
    os: str
    device: str


@lru_cache(maxsize=2048)
def classify_user_agent(user_agent: str) -> ClientClass:
    """Return the browser, OS and device class of a User-Agent (cached)."""
    if not user_agent:
        return ClientClass("other", "other", "other")
    result = parse(user_agent)
    browser_family = result.user_agent.family if result.user_agent else "Other"
    os_family = result.os.family if result.os else "Other"
    device_family = result.device.family if result.device else "Other"
    if device_family == "Spider":
        device = "bot"
    elif device_family == "iPad" or "tablet" in user_agent.lower():
        device = "tablet"
    elif os_family in {"iOS", "Android"} or "Mobile" in user_agent:
        device = "mobile"
    elif os_family in OPERATING_SYSTEMS:
        device = "desktop"
    else:
        device = "other"
    return ClientClass(
        BROWSERS.get(browser_family, "other"), OPERATING_SYSTEMS.get(os_family, "other"), device
    )


class ClientClassifier:
    """Classify requests by User-Agent and the trusted region header."""

    def __init__(self, *, region_header: str | None, regions: frozenset[str]) -> None:
        self.region_header = region_header.lower().encode() if region_header else None
        self.regions = regions

    def region(self, value: str | None) -> str:
        """Map a region header's value onto the allow-list."""
        if value is None:
            return "unknown"
        region = value.strip().lower()
        return region if region in self.regions else "other"

    def classify(self, headers: list[tuple[bytes, bytes]]) -> tuple[ClientClass, str]:
        """Return the client class and region of a request's raw ASGI headers."""
        user_agent = ""
        region = None
        for name, value in headers:
            if name == b"user-agent":
                user_agent = value[:_MAX_UA].decode("latin-1")
            elif self.region_header is not None and name == self.region_header:
                region = value[:64].decode("latin-1")
        return classify_user_agent(user_agent), self.region(region)
