"""Headless Debian Chromium for the browser tests (storefront, status pages), axe-core, artifacts.

Selenium drives Debian's ``/usr/bin/chromium`` through Debian's ``/usr/bin/chromedriver``
(the Service names the driver, so Selenium Manager never looks for or downloads one). Each
page's screenshot goes to ``test-artifacts/storefront/`` (the folder CI keeps) and its path is
printed; axe-core (``demo-app/web/node_modules/axe-core``) is injected into a page to audit it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from lookout_demo.storefront.pages import BUNDLE_DIR

__all__ = [
    "ARTIFACTS",
    "AXE_JS",
    "CHROMEDRIVER",
    "CHROMIUM",
    "axe_violations",
    "browser",
    "console_errors",
    "require_browser",
    "require_bundle",
    "screenshot",
    "wait_for",
]

IN_CI = os.environ.get("CI", "").lower() == "true"
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE_JS = REPO / "demo-app" / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "storefront"
#: A phone's viewport (CSS pixels): every page must work at this width.
PHONE = (412, 915)


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_browser() -> None:
    """Skip (locally) or fail (in CI) without Debian's chromium and chromium-driver."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            _missing(f"{path} is missing: apt-get install {package} (scripts/test.sh does)")


def require_bundle() -> None:
    """Skip (locally) or fail (in CI) when the storefront's browser bundle was not built."""
    if not (BUNDLE_DIR / "manifest.json").is_file() or not AXE_JS.is_file():
        _missing(
            f"the storefront bundle ({BUNDLE_DIR}) or axe-core is missing: "
            "cd demo-app/web && npm ci && npm run build (scripts/test.sh does)"
        )


@contextmanager
def browser(
    width: int = PHONE[0], height: int = PHONE[1], page_load_strategy: str = "normal"
) -> Iterator[webdriver.Chrome]:
    """Start headless Chromium at a phone's width; quit it afterwards.

    ``page_load_strategy="eager"`` makes ``driver.get`` return at DOMContentLoaded rather than
    after the load event (to act on a page before its after-load scripts have run).
    """
    require_browser()
    options = Options()
    options.binary_location = str(CHROMIUM)
    options.page_load_strategy = page_load_strategy
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers; the pages are our own
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    # Browser console messages, for the failure messages of the tests.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach the network
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: webdriver.Chrome, script: str, timeout: float = 10.0) -> Any:
    """Poll a JavaScript expression until it is truthy; return its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.execute_script(f"return ({script});"),
        message=f"`{script}` stayed falsy for {timeout}s",
    )


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save the page as test-artifacts/storefront/<name>.png (full height) and print the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(int(height) + 120, PHONE[1]))
    driver.save_screenshot(str(path))
    driver.set_window_size(width, PHONE[1])
    print(f"screenshot: {path}")
    return path


def axe_violations(
    driver: webdriver.Chrome, impacts: tuple[str, ...] = ("serious", "critical")
) -> list[dict[str, Any]]:
    """Run axe-core in the page; return the violations of the given impacts (id, help, nodes)."""
    driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations)),"
        " e => done(JSON.stringify({error: String(e)})));"
    )
    found = json.loads(result)
    if isinstance(found, dict):
        msg = f"axe-core failed in the page: {found['error']}"
        raise AssertionError(msg)
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]],
        }
        for v in found
        if v["impact"] in impacts
    ]


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """Return the browser console's SEVERE messages so far."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
