"""Locust load for the demo shop: weighted shopper journeys with think time, and budgets.

In compose (`make load`: `docker compose --profile load up -d locust`), the Locust web UI on
:8089 drives the shop; headless against a running stack: `make load-headless`, or
`uv run locust -f tests/load/locustfile.py --headless -u 10 -r 2 -t 1m --host
http://127.0.0.1:8000`. Every request carries the W3C baggage entry `lookout.synthetic=load`
(propagated with the trace context), and the shoppers log in as the seeded `loadNN@example.com`
accounts, so load can be told from people.

When Locust quits (a headless run's --run-time, or the web UI's process being stopped), the
run's statistics are held to the performance budgets of tests/load/budgets.toml (or the file
that `--budgets` / LOCUST_BUDGETS names): a broken budget is logged with its figure and
limit, and Locust exits 1. A budget file that does not load stops Locust before any user
starts, naming file:line and the field. How Locust lets a test set its exit code:
https://docs.locust.io/en/2.47.0/running-without-web-ui.html ("Controlling the exit code").
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

# Locust puts the locustfile's folder (in compose: /mnt/locust) first on sys.path.
from budgets import BudgetError, Budgets, check_budgets, load_budgets
from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

#: The seeded load-test accounts (demo-app/src/lookout_demo/shop/seed.py) and their password.
LOAD_USERS = [f"load{n:02d}@example.com" for n in range(1, 11)]
DEMO_PASSWORD = "lookout-demo"
CATEGORIES = ["optics", "outdoor", "navigation", "stationery"]
#: Marks the traffic as load, on every request (W3C Baggage, https://www.w3.org/TR/baggage/).
LOAD_HEADERS = {"baggage": "lookout.synthetic=load"}
#: A card number the demo payments service authorises (its test-decline card differs).
CARD = "4242 4242 4242 4242"
#: The seeded catalog's product ids (demo-app/src/lookout_demo/shop/seed.py).
PRODUCT_IDS = range(1, 13)
#: Results per page when a shopper searches a category (small, so searches page).
PAGE = 4
DEFAULT_BUDGETS = Path(__file__).resolve().parent / "budgets.toml"
#: The shop blocks an address after 5 failed logins in 300 s (DEMO_BRUTEFORCE_* settings),
#: and every simulated shopper shares this process's address: mistyped passwords stay below
#: that, or the guard would refuse the load's right passwords too. A brute-force burst is an
#: event of its own (the e2e tests trigger one deliberately), not background load.
MISTYPES_PER_WINDOW, MISTYPE_WINDOW_SECONDS = 3, 300.0

log = logging.getLogger("lookout.load")


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--budgets",
        type=str,
        env_var="LOCUST_BUDGETS",
        default=str(DEFAULT_BUDGETS),
        help="the performance budgets (TOML) checked when Locust quits",
    )


@events.init.add_listener
def _load_budgets(environment: Environment, **_kwargs: Any) -> None:
    """Read the budgets at start-up, so a broken file stops Locust before any load is sent."""
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return  # workers send their figures to the master, which checks them
    try:
        environment.lookout_budgets = load_budgets(Path(environment.parsed_options.budgets))  # type: ignore[attr-defined]
    except BudgetError as exc:
        log.error("performance budgets: %s", exc)
        sys.exit(2)


@events.quitting.add_listener
def _enforce_budgets(environment: Environment, **_kwargs: Any) -> None:
    """Fail the run (exit code 1) when a figure breaks its budget, saying which and by how much."""
    budgets: Budgets | None = getattr(environment, "lookout_budgets", None)
    if budgets is None or isinstance(environment.runner, WorkerRunner):
        return
    broken = check_budgets(budgets, environment.stats)
    for line in broken:
        log.error("budget broken: %s", line)
    if broken:
        environment.process_exit_code = 1
    else:
        log.info("every performance budget of %s holds", budgets.path)


class Shopper(HttpUser):
    """A shopper: mostly browses and searches, sometimes buys, now and then mistypes a password."""

    # Think time between actions, as people pause to read.
    wait_time = between(1, 4)

    def on_start(self) -> None:
        """Log in as one of the load accounts."""
        self.client.headers.update(LOAD_HEADERS)
        self.email = random.choice(LOAD_USERS)
        self.token: str | None = None
        self._login()

    def _login(self) -> None:
        with self.client.post(
            "/api/login",
            json={"email": self.email, "password": DEMO_PASSWORD},
            name="/api/login",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                self.token = response.json()["token"]
                response.success()
            else:
                response.failure(f"login as {self.email} answered {response.status_code}")

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @task(10)
    def browse(self) -> None:
        """List a category, then look at one of its products."""
        category = random.choice(CATEGORIES)
        response = self.client.get(
            "/api/products", params={"category": category}, name="/api/products?category"
        )
        products: list[dict[str, Any]] = response.json() if response.ok else []
        if products:
            product = random.choice(products)
            self.client.get(f"/api/products/{product['id']}", name="/api/products/{id}")

    @task(5)
    def search(self) -> None:
        """Search the catalog the way the shop's API offers: a category, page by page."""
        category = random.choice(CATEGORIES)
        for offset in range(0, 3 * PAGE, PAGE):  # at most three pages, as people give up
            response = self.client.get(
                "/api/products",
                params={"category": category, "limit": PAGE, "offset": offset},
                name="/api/products?category&limit&offset",
            )
            if not response.ok or len(response.json()) < PAGE:
                break

    @task(3)
    def storefront(self) -> None:
        """Open the storefront's catalog page, then a product page (server-rendered HTML)."""
        self.client.get("/", name="storefront /")
        self.client.get(f"/products/{random.choice(PRODUCT_IDS)}", name="storefront /products/{id}")

    @task(4)
    def add_to_cart(self) -> None:
        """Put one or two products in a new cart and look at it."""
        cart = self._new_cart(random.randint(1, 2))
        if cart:
            self.client.get(f"/api/carts/{cart}", name="/api/carts/{id}")

    @task(2)
    def checkout(self) -> None:
        """Buy: a new cart, then checkout (by card, PayPal or gift card)."""
        cart = self._new_cart(random.randint(1, 3))
        if not cart:
            return
        method = random.choice(["card", "card", "paypal", "gift_card"])
        payment: dict[str, str] = {"method": method}
        if method == "card":
            payment["card_number"] = CARD
        with self.client.post(
            "/api/checkout",
            json={"cart_id": cart, "payment": payment},
            headers=self._auth(),
            name="/api/checkout",
            catch_response=True,
        ) as response:
            if response.status_code == 401:
                self._login()
            # A decline (402) or a sold-out product (409) is the shop working as designed.
            if response.status_code in {201, 402, 409}:
                response.success()

    @task(2)
    def sign_in_again(self) -> None:
        """Log out and back in (a successful login), then look at the account and experiments."""
        if self.token:
            self.client.post("/api/logout", headers=self._auth(), name="/api/logout")
        self.token = None
        self._login()
        if self.token:
            self.client.get("/api/me", headers=self._auth(), name="/api/me")
            self.client.get("/api/experiments", headers=self._auth(), name="/api/experiments")

    #: When this process's shoppers last mistyped a password (shared by every shopper).
    mistyped_at: ClassVar[deque[float]] = deque()

    @task(1)
    def mistyped_password(self) -> None:
        """Fail a login once, as people do (the security dashboard counts these)."""
        now = time.monotonic()
        while self.mistyped_at and now - self.mistyped_at[0] > MISTYPE_WINDOW_SECONDS:
            self.mistyped_at.popleft()
        if len(self.mistyped_at) >= MISTYPES_PER_WINDOW:
            self.browse()  # this address has mistyped enough for now: see MISTYPES_PER_WINDOW
            return
        self.mistyped_at.append(now)
        with self.client.post(
            "/api/login",
            json={"email": self.email, "password": "wrong-" + DEMO_PASSWORD},
            name="/api/login (wrong password)",
            catch_response=True,
        ) as response:
            if response.status_code in {401, 429}:
                response.success()
            else:
                response.failure(f"a wrong password answered {response.status_code}")

    @task(1)
    def old_client(self) -> None:
        """List products through the deprecated v1 API, as clients not yet upgraded still do."""
        self.client.get("/api/v1/products", params={"limit": PAGE}, name="/api/v1/products")

    def _new_cart(self, lines: int) -> str | None:
        response = self.client.post("/api/carts", name="/api/carts")
        if not response.ok:
            return None
        cart = str(response.json()["id"])
        for _ in range(lines):
            self.client.post(
                f"/api/carts/{cart}/items",
                json={"product_id": random.choice(PRODUCT_IDS), "quantity": 1},
                name="/api/carts/{id}/items",
            )
        return cart
