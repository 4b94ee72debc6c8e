"""Browser errors in the real Bugsink: release, the page's ids, source-mapped frames, no form data.

The bundle's source maps are uploaded with sentry-cli (demo-app/web/upload-sourcemaps.mjs, the
debug-id artifact bundles Bugsink accepts); a button of the checkout page throws; Bugsink stores
the event and, through its own source-map code, maps the top frame back to web/src/app.js.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from storefront_fixtures import served_storefront

from stack_support.browser import browser, require_bundle, screenshot, wait_for
from stack_support.bugsink import BUGSINK_MANAGE, Bugsink

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WEB = Path(__file__).resolve().parents[1] / "web"
APP_SOURCE = WEB / "src" / "app.js"
CARDHOLDER = "Carla Cardholder"
CARD = "4242 4242 4242 4242"

#: Run inside Bugsink: apply its source maps to the newest storefront event, print the frames.
_MAP_FRAMES = """
import json
from events.models import Event
from events.utils import apply_sourcemaps
event = Event.objects.filter(project__name="storefront").order_by("-ingested_at").first()
data = event.get_parsed_data()
apply_sourcemaps(data, event.project)
print("FRAMES=" + json.dumps([f for e in data["exception"]["values"]
                              for f in e.get("stacktrace", {}).get("frames", [])]))
"""


def _manage(bugsink: Bugsink, *args: str) -> str:
    done = subprocess.run(
        [str(BUGSINK_MANAGE), *args],
        env=bugsink.env,
        cwd=bugsink.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"bugsink-manage {args[0]}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def uploaded(bugsink: Bugsink) -> Bugsink:
    """Upload the bundle's source maps to Bugsink's storefront project with sentry-cli."""
    require_bundle()
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the storefront bundle needs it (scripts/test.sh)")
    token = _manage(bugsink, "create_auth_token").strip().splitlines()[-1]
    done = subprocess.run(
        [node, str(WEB / "upload-sourcemaps.mjs")],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(bugsink.workdir),
            "SENTRY_URL": f"http://127.0.0.1:{bugsink.port}/",
            "SENTRY_AUTH_TOKEN": token,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"upload failed: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    return bugsink


@pytest.fixture(scope="module")
def event(
    uploaded: Bugsink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Fill the checkout form, press the button that throws; yield (stored event, page config)."""
    dsn = uploaded.dsns["storefront"]
    with (
        served_storefront(tmp_path_factory.mktemp("storefront-errors"), sentry_dsn=dsn) as (url, _),
        browser() as driver,
    ):
        config = _throw_on_checkout(driver, url)
        stored = uploaded.wait_for_event(
            "storefront",
            lambda e: "storefront test error" in json.dumps(e.get("exception", {})),
            timeout=20,
        )
        yield stored, config


def _throw_on_checkout(driver: webdriver.Chrome, url: str) -> dict[str, Any]:
    driver.get(f"{url}/products/1")
    driver.find_element("id", "add-to-cart").click()
    wait_for(driver, "location.pathname === '/cart'")
    driver.get(f"{url}/checkout")
    driver.find_element("id", "cardholder").send_keys(CARDHOLDER)
    driver.find_element("id", "card-number").send_keys(CARD)
    driver.find_element("id", "report-test-error").click()
    screenshot(driver, "checkout-after-error")
    config: dict[str, Any] = json.loads(
        driver.find_element("id", "lookout-config").get_attribute("textContent") or "{}"
    )
    return config


def test_event_has_release_environment_and_the_page_ids(
    event: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """The event carries the page's release and environment, trace id and request id as tags."""
    stored, config = event
    assert stored["release"] == config["release"]
    assert stored["environment"] == config["environment"]
    tags = dict(stored["tags"]) if isinstance(stored["tags"], list) else stored["tags"]
    assert tags["trace_id"] == config["traceparent"].split("-")[1]
    assert tags["request_id"] == config["requestId"]


def test_event_holds_no_form_values_or_card_numbers(
    event: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Neither the card number (any spelling) nor the name typed in the form is stored."""
    text = json.dumps(event[0])
    for secret in (CARD, CARD.replace(" ", ""), CARDHOLDER):
        assert secret not in text, f"{secret!r} reached Bugsink"
    assert "[Filtered]" in text  # the message's card number, masked where it was


def test_stack_trace_maps_to_the_source_file_and_line(
    uploaded: Bugsink, event: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """Bugsink maps the top frame back to web/src/app.js, at the line that made the error."""
    out = _manage(uploaded, "shell", "-c", _MAP_FRAMES)
    frames = json.loads(next(ln for ln in out.splitlines() if ln.startswith("FRAMES="))[7:])
    top = frames[-1]  # Sentry orders frames oldest first
    expected = next(
        number
        for number, line in enumerate(APP_SOURCE.read_text(encoding="utf-8").splitlines(), 1)
        if "const error = new Error(" in line
    )
    assert top["filename"] == "demo-app/web/src/app.js", top
    assert top["lineno"] == expected, top
    assert "new Error(" in top["context_line"], top
    print(f"mapped: {top['filename']}:{top['lineno']} in {top['function']}")


#: Card numbers as a person may type them (the form allows runs of spaces and dashes).
TYPED_CARDS = {
    "grouped": "4242 4242 4242 4242",
    "dashed": "4242-4242-4242-4242",
    "double-spaced": "4242  4242  4242  4242",
    "spaced-dashes": "4242 - 4242 - 4242 - 4242",
    "tabs": "4242\t4242\t4242\t4242",
}


@pytest.mark.parametrize("card", list(TYPED_CARDS.values()), ids=list(TYPED_CARDS))
def test_scrubber_masks_a_card_number_however_it_was_typed(card: str) -> None:
    """scrub.js masks a card number with any run of spaces or dashes between its digits."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the storefront bundle needs it (scripts/test.sh)")
    script = (
        f"import {{ scrubText }} from {json.dumps((WEB / 'src' / 'scrub.js').as_uri())};"
        "process.stdout.write(scrubText(process.argv[1]));"
    )
    done = subprocess.run(
        [node, "--input-type=module", "-e", script, f"card {card} was not accepted"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout == "card [Filtered] was not accepted", done.stdout


#: A real debug id of a bundle build (sentry-cli inject): 12 digits and a dash up front.
DIGIT_DEBUG_ID = "10982917-1556-5d6e-971e-ed1045125f37"


def test_scrubber_keeps_the_debug_ids_that_map_the_stack() -> None:
    """A debug id made mostly of digits is kept: masked, Bugsink could not find the source map."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the storefront bundle needs it (scripts/test.sh)")
    image = {"type": "sourcemap", "code_file": "app.js", "debug_id": DIGIT_DEBUG_ID}
    script = (
        f"import {{ scrubEvent }} from {json.dumps((WEB / 'src' / 'scrub.js').as_uri())};"
        "const event = JSON.parse(process.argv[1]);"
        "process.stdout.write(JSON.stringify(scrubEvent(event)));"
    )
    event = {"message": "card 4242 4242 4242 4242", "debug_meta": {"images": [image]}}
    done = subprocess.run(
        [node, "--input-type=module", "-e", script, json.dumps(event)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    scrubbed = json.loads(done.stdout)
    assert scrubbed["debug_meta"]["images"] == [image], scrubbed
    assert scrubbed["message"] == "card [Filtered]"
