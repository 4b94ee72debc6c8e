"""Locust load for the demo shop: weighted shopper journeys with think time.

In compose (`docker compose --profile load up -d`), the Locust web UI on :8089 drives the shop;
headless from a shell: `uv run locust -f tests/load/locustfile.py --headless -u 10 -r 2 -t 1m
--host http://127.0.0.1:8000`. Every request carries the W3C baggage entry
`lookout.synthetic=load` (propagated with the trace context), and the shoppers log in as the
seeded `loadNN@example.com` accounts, so load can be told from people.
"""

from __future__ import annotations

import random
from typing import Any

from locust import HttpUser, between, task

#: The seeded load-test accounts (demo-app/src/lookout_demo/shop/seed.py) and their password.
LOAD_USERS = [f"load{n:02d}@example.com" for n in range(1, 11)]
DEMO_PASSWORD = "lookout-demo"
CATEGORIES = ["optics", "outdoor", "navigation", "stationery"]
#: Marks the traffic as load, on every request (W3C Baggage, https://www.w3.org/TR/baggage/).
LOAD_HEADERS = {"baggage": "lookout.synthetic=load"}
#: A card number the demo payments service authorises (its test-decline card differs).
CARD = "4242 4242 4242 4242"


class Shopper(HttpUser):
    """A shopper: mostly browses, sometimes buys, now and then mistypes a password."""

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

    @task(1)
    def mistyped_password(self) -> None:
        """Fail a login once, as people do (the security dashboard counts these)."""
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

    def _new_cart(self, lines: int) -> str | None:
        response = self.client.post("/api/carts", name="/api/carts")
        if not response.ok:
            return None
        cart = str(response.json()["id"])
        for _ in range(lines):
            self.client.post(
                f"/api/carts/{cart}/items",
                json={"product_id": random.randint(1, 12), "quantity": 1},
                name="/api/carts/{id}/items",
            )
        return cart
