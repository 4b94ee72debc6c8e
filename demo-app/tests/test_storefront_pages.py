"""The storefront's pages: served without JavaScript, labelled, configured from the server, and
in headless Chromium at a phone's width: no serious accessibility violation, a screenshot each."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from storefront_fixtures import served_storefront

from demo_support import DEMO_PASSWORD, ShopFactory
from lookout_demo.settings import SettingsError
from lookout_demo.storefront.pages import CART_COOKIE
from lookout_demo.storefront.settings import StorefrontSettings, load_storefront_settings
from stack_support.browser import (
    axe_violations,
    browser,
    console_errors,
    require_bundle,
    screenshot,
    wait_for,
)

OTLP_URL = "http://127.0.0.1:4318/v1/traces"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DSN = "http://public@127.0.0.1:8010/5"


class _Page(HTMLParser):
    """Collect what the checks look at: inputs, labels, landmarks, the config script."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.tags: list[str] = []
        self.meta: dict[str, str] = {}
        self.scripts: list[str] = []
        self._in_config = False
        self.config_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag in {"input", "select", "textarea"} and a.get("type") != "hidden":
            self.inputs.append(a)
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag == "meta" and a.get("name"):
            self.meta[str(a["name"])] = str(a.get("content"))
        if tag == "script":
            if a.get("src"):
                self.scripts.append(str(a["src"]))
            self._in_config = a.get("id") == "lookout-config"

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_config = False


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture
def storefront(shop: TestClient) -> TestClient:
    """The test shop with browser telemetry configured as compose does."""
    shop.app.state.storefront = StorefrontSettings(otlp_traces_url=OTLP_URL, sentry_dsn=DSN)  # type: ignore[attr-defined]
    return shop


def _add(client: TestClient, product_id: int = 1, quantity: str = "2") -> Any:
    return client.post(
        "/cart/items",
        content=f"product_id={product_id}&quantity={quantity}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


PAGES = ["/", "/?category=optics", "/products/1", "/cart", "/checkout", "/login", "/orders/abc123"]


@pytest.mark.parametrize("path", PAGES, ids=PAGES)
def test_every_page_is_semantic_and_labels_every_field(storefront: TestClient, path: str) -> None:
    """Each page is HTML with a main landmark, one h1, and a label for every visible field."""
    _add(storefront)
    response = storefront.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = _parse(response.text)
    assert {"header", "nav", "main", "footer"} <= set(page.tags)
    assert page.tags.count("h1") == 1
    unlabelled = [i for i in page.inputs if i.get("id") not in page.labels]
    assert not unlabelled, f"{path}: fields without a <label for>: {unlabelled}"
    assert page.meta.get("viewport", "").startswith("width=device-width")


def test_page_config_carries_the_endpoints_release_and_this_request(storefront: TestClient) -> None:
    """The page's config names the OTLP URL, the DSN, the release and the request's ids."""
    response = storefront.get("/", headers={"X-Request-ID": "req-storefront-1"})
    page = _parse(response.text)
    config = json.loads(page.config_text)
    assert config["otlpTracesUrl"] == OTLP_URL
    assert config["sentryDsn"] == DSN
    assert re.fullmatch(r"lookout-storefront@[\w.]+\+\w+", config["release"]), config["release"]
    assert config["environment"] == "development"
    assert config["requestId"] == "req-storefront-1"
    # The server span that rendered the page is the page view's parent (one trace per view).
    assert config["traceparent"] == page.meta["traceparent"]
    found = re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-([0-9a-f]{2})", config["traceparent"])
    assert found and int(found[1], 16) & 1, f"not a sampled traceparent: {config['traceparent']}"


def test_config_is_escaped_inside_its_script_element(storefront: TestClient) -> None:
    """A value with </script> in it cannot end the config element early."""
    storefront.app.state.storefront = StorefrontSettings(otlp_traces_url="http://x/</script><b>")  # type: ignore[attr-defined]
    page = _parse(storefront.get("/").text)
    assert json.loads(page.config_text)["otlpTracesUrl"] == "http://x/</script><b>"


def test_telemetry_off_serves_the_pages_without_the_telemetry_bundle(
    storefront: TestClient,
) -> None:
    """With telemetry on, the page links only app.js and inlines the bootstrap; off, neither."""
    require_bundle()
    html = storefront.get("/").text
    page = _parse(html)
    config = json.loads(page.config_text)
    assert [re.sub(r"-\w+\.js$", ".js", s.rsplit("/", 1)[1]) for s in page.scripts] == ["app.js"]
    # The bundles are named for the bootstrap to load after the load event, not linked.
    assert re.search(r"/telemetry-\w+\.js$", config["telemetryScript"]), config
    assert re.search(r"/errors-\w+\.js$", config["errorsScript"]), config
    assert "lookoutBoot" in html
    storefront.app.state.storefront = StorefrontSettings(telemetry_enabled=False)  # type: ignore[attr-defined]
    html = storefront.get("/").text
    page = _parse(html)
    config = json.loads(page.config_text)
    assert [re.sub(r"-\w+\.js$", ".js", s.rsplit("/", 1)[1]) for s in page.scripts] == ["app.js"]
    assert config["telemetryScript"] is None
    assert config["errorsScript"] is None
    assert "lookoutBoot" not in html


def test_inline_bootstrap_stays_under_one_kilobyte(storefront: TestClient) -> None:
    """The bootstrap written into every page (web/src/boot.js, minified) is under 1 KB."""
    require_bundle()
    html = storefront.get("/").text
    boot = re.search(r"<script>(.*?)</script>", html, re.DOTALL)
    assert boot and "lookoutBoot" in boot[1], html[:2000]
    assert len(boot[1].encode()) < 1024, len(boot[1].encode())


def test_bundle_files_are_immutable_and_the_stylesheet_revalidates(storefront: TestClient) -> None:
    """Hashed bundle files are gzipped and cached for a year; the stylesheet is revalidated."""
    require_bundle()
    script = json.loads(_parse(storefront.get("/").text).config_text)["telemetryScript"]
    cached = storefront.get(script)
    assert cached.status_code == 200
    assert cached.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert cached.headers["content-encoding"] == "gzip"  # precompressed at build
    assert "lookoutTelemetry" in cached.text  # httpx decoded it: a real gzip of the script
    css = storefront.get("/static/storefront/storefront.css")
    assert css.headers["cache-control"] == "no-cache"


def test_add_to_cart_works_without_javascript(storefront: TestClient) -> None:
    """A plain form post creates the cart, sets an HttpOnly cookie and redirects to the cart."""
    response = _add(storefront, quantity="3")
    assert response.status_code == 303
    assert response.headers["location"] == "/cart"
    cookie = response.headers["set-cookie"]
    assert (
        cookie.startswith(f"{CART_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    )
    cart = storefront.get("/cart").text
    assert "Brass telescope" in cart and "$567.00" in cart
    _add(storefront, quantity="1")
    assert "$756.00" in storefront.get("/cart").text
    removed = storefront.post("/cart/items/1/remove", follow_redirects=True)
    assert "Your cart is empty" in removed.text


def test_cart_cookie_is_secure_when_the_page_came_over_https(storefront: TestClient) -> None:
    """Served over HTTPS, the cart cookie is Secure too: it never travels over plain HTTP."""
    response = storefront.post(
        "https://testserver/cart/items",
        content="product_id=1&quantity=1",
        headers=FORM,
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"], response.headers["set-cookie"]
    plain = _add(storefront)
    assert "Secure" not in plain.headers["set-cookie"]  # http://: the cookie must still work


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ("product_id=1&quantity=0", 422, "quantity from 1 to 100"),
        ("product_id=x", 422, "Choose a product"),
        ("product_id=999&quantity=1", 404, "does not exist"),
        ("product_id=1&quantity=100000", 422, "quantity from 1 to 100"),
        ("&".join(f"f{n}=1" for n in range(11)), 422, "Choose a product"),
    ],
    ids=["zero", "not-a-number", "unknown-product", "too-many", "too-many-fields"],
)
def test_bad_add_to_cart_says_what_was_wrong(
    storefront: TestClient, body: str, status: int, text: str
) -> None:
    """A bad form is answered with a page that says what to fix, with the right status."""
    response = storefront.post(
        "/cart/items", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == status
    assert text in response.text


@pytest.mark.parametrize("path", ["/login", "/checkout"])
def test_forms_posted_without_javascript_keep_secrets_out_of_urls(
    storefront: TestClient, path: str
) -> None:
    """Login and payment forms post (never GET) and, without the script, get a plain answer."""
    _add(storefront)  # so the checkout page has its form
    form = re.search(r"<form id=\"\w+-form\"[^>]*>", storefront.get(path).text)
    assert form is not None and 'method="post"' in form[0], form
    response = storefront.post(path, content="password=hunter2", headers=FORM)
    assert response.status_code == 400
    assert "needs JavaScript" in response.text
    assert "hunter2" not in response.text


def test_unknown_product_page_is_a_404_page(storefront: TestClient) -> None:
    """A product that does not exist is an HTML 404 that links back to the catalog."""
    response = storefront.get("/products/999")
    assert response.status_code == 404
    assert "There is no product 999." in response.text


def test_a_bad_cart_cookie_starts_a_new_cart(storefront: TestClient) -> None:
    """A cookie naming no cart (expired, forged) shows an empty cart, not an error."""
    storefront.cookies.set(CART_COOKIE, "nosuchcart")
    assert "Your cart is empty" in storefront.get("/cart").text
    assert _add(storefront).status_code == 303


def test_storefront_settings_name_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-URL endpoint stops start-up with the variable's name."""
    monkeypatch.setenv("DEMO_STOREFRONT_OTLP_TRACES_URL", "collector:4318")
    with pytest.raises(SettingsError, match="DEMO_STOREFRONT_OTLP_TRACES_URL"):
        load_storefront_settings()
    monkeypatch.setenv("DEMO_STOREFRONT_OTLP_TRACES_URL", "")
    assert load_storefront_settings().otlp_traces_url is None


def test_storefront_disabled_serves_the_api_only(
    make_shop: ShopFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEMO_STOREFRONT_ENABLED=false leaves the pages out; the API is unchanged."""
    from lookout_demo.storefront import settings as storefront_settings

    monkeypatch.setenv("DEMO_STOREFRONT_ENABLED", "false")
    storefront_settings.get_storefront_settings.cache_clear()
    try:
        client = make_shop()
    finally:
        storefront_settings.get_storefront_settings.cache_clear()
    assert client.get("/").status_code == 404
    assert client.get("/api/products").status_code == 200


# --------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def shopper(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[webdriver.Chrome, str, str]]:
    """A browser with a cart and a logged-in tab, and an order placed: (driver, url, order id)."""
    require_bundle()
    workdir = tmp_path_factory.mktemp("storefront-pages")
    with served_storefront(workdir) as (url, _spans), browser() as driver:
        driver.get(f"{url}/products/2")
        driver.find_element("id", "add-to-cart").click()
        wait_for(driver, "location.pathname === '/cart'")
        driver.get(f"{url}/login")
        driver.find_element("id", "email").send_keys("bob@example.com")
        driver.find_element("id", "password").send_keys(DEMO_PASSWORD)
        driver.find_element("id", "log-in").click()
        wait_for(driver, "location.pathname === '/'")
        token = driver.execute_script("return sessionStorage.getItem('lookout.token')")
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=10) as api:
            cart = api.post("/api/carts").json()["id"]
            api.post(f"/api/carts/{cart}/items", json={"product_id": 3, "quantity": 1})
            order = api.post(
                "/api/checkout",
                json={
                    "cart_id": cart,
                    "payment": {"method": "card", "card_number": "4242424242424242"},
                },
                headers=auth,
            ).json()["id"]
        yield driver, url, order


BROWSER_PAGES = {
    "catalog": ("/", "Catalog"),
    "product": ("/products/2", "Star chart"),
    "cart": ("/cart", "Your cart"),
    "checkout": ("/checkout", "Checkout"),
    "login": ("/login", "Log in"),
    "order": ("/orders/{order}", "Thank you for your order"),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", list(BROWSER_PAGES), ids=list(BROWSER_PAGES))
def test_page_in_chromium_at_phone_width(
    shopper: tuple[webdriver.Chrome, str, str], name: str
) -> None:
    """The page renders at 412 px without sideways scrolling, errors or serious axe findings."""
    driver, url, order = shopper
    path, heading = BROWSER_PAGES[name]
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url + path.format(order=order))
    wait_for(driver, "document.readyState === 'complete'")
    if name == "order":
        wait_for(driver, "document.getElementById('order-status').textContent.startsWith('Status')")
    assert driver.find_element("tag name", "h1").text.startswith(heading)
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: {overflow}px wider than a phone's screen"
    screenshot(driver, name)
    violations = axe_violations(driver)
    assert not violations, f"{name}: axe-core found {json.dumps(violations, indent=1)}"
    errors = console_errors(driver)  # reading the log empties it: read once
    assert not errors, errors


@pytest.mark.integration
def test_pages_work_when_the_telemetry_script_cannot_load(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With the telemetry bundle blocked, app.js still registers its listeners: login works."""
    require_bundle()
    workdir = tmp_path_factory.mktemp("storefront-blocked")
    # An OTLP URL makes the pages load the telemetry; the browser is refused the bundle itself.
    with served_storefront(workdir, otlp_traces_url=OTLP_URL) as (url, _), browser() as driver:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/telemetry-*.js"]})
        driver.get(f"{url}/login")
        driver.find_element("id", "email").send_keys("bob@example.com")
        driver.find_element("id", "password").send_keys(DEMO_PASSWORD)
        driver.find_element("id", "log-in").click()
        wait_for(driver, "location.pathname === '/'")
        assert driver.execute_script("return window.lookoutTelemetry === undefined")
        assert driver.execute_script("return Boolean(sessionStorage.getItem('lookout.token'))")


@pytest.mark.integration
def test_login_redirects_only_to_a_page_of_this_site(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """After logging in, `next` leads to a path of this site; any other origin leads to /."""
    require_bundle()
    workdir = tmp_path_factory.mktemp("storefront-next")
    cases = {
        "/checkout": "/checkout",
        # Browsers read a backslash as a slash and drop tabs: both spell //evil.invalid/.
        "/%5Cevil.invalid/": "/",
        "/%09/evil.invalid/": "/",
        "//evil.invalid/": "/",
        "https://evil.invalid/": "/",
    }
    with served_storefront(workdir) as (url, _), browser() as driver:
        for next_, landing in cases.items():
            driver.get(f"{url}/login?next={next_}")
            driver.find_element("id", "email").clear()
            driver.find_element("id", "email").send_keys("bob@example.com")
            driver.find_element("id", "password").send_keys(DEMO_PASSWORD)
            driver.find_element("id", "log-in").click()
            try:
                wait_for(driver, f"location.href === {json.dumps(url + landing)}")
            except TimeoutException:
                pytest.fail(f"next={next_}: landed on {driver.current_url}, not {landing}")
