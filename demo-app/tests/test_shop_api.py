"""The shop's API: browsing, carts, checkout, login, and bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from demo_support import ShopFactory, login, new_cart
from lookout_demo.payments.routes import DECLINED_TEST_CARD
from lookout_demo.shop.models import Order, Product
from lookout_demo.shop.seed import PRODUCTS

CARD = "4242 4242 4242 4242"


def _count_orders_and_stock(db_file: Path, product_id: int) -> tuple[int, int]:
    async def run() -> tuple[int, int]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{db_file}")
        async with engine.connect() as conn:
            orders = (await conn.execute(select(func.count()).select_from(Order))).scalar_one()
            stock = (
                await conn.execute(select(Product.stock).where(Product.id == product_id))
            ).scalar_one()
        await engine.dispose()
        return int(orders), int(stock)

    return asyncio.run(run())


def test_catalog_lists_seeded_products(shop: TestClient) -> None:
    """The catalog is seeded on start-up and can be filtered by category."""
    everything = shop.get("/api/products", params={"limit": 100}).json()
    optics = shop.get("/api/products", params={"category": "optics"}).json()
    assert len(everything) == len(PRODUCTS)
    assert {p["category"] for p in optics} == {"optics"}
    assert shop.get("/api/products/1").json()["sku"] == "TEL-001"


def test_checkout_pays_order_and_empties_cart(shop: TestClient, tmp_path: Path) -> None:
    """A logged-in checkout is authorised and captured by payments, stock drops, cart empties."""
    auth = login(shop)
    _, stock_before = _count_orders_and_stock(tmp_path / "shop.db", 2)
    cart_id = new_cart(shop, (2, 3))
    response = shop.post(
        "/api/checkout",
        json={"cart_id": cart_id, "payment": {"method": "card", "card_number": CARD}},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "paid"
    assert order["total_cents"] == 3 * 1500
    assert shop.get(f"/api/carts/{cart_id}").json()["items"] == []
    assert shop.get(f"/api/orders/{order['id']}", headers=auth).json()["status"] == "paid"
    _, stock_after = _count_orders_and_stock(tmp_path / "shop.db", 2)
    assert stock_after == stock_before - 3


def test_declined_payment_restores_stock(shop: TestClient, tmp_path: Path) -> None:
    """A declined card answers 402 with the order id and gives the reserved stock back."""
    auth = login(shop)
    _, stock_before = _count_orders_and_stock(tmp_path / "shop.db", 5)
    cart_id = new_cart(shop, (5, 2))
    response = shop.post(
        "/api/checkout",
        json={"cart_id": cart_id, "payment": {"method": "card", "card_number": DECLINED_TEST_CARD}},
        headers=auth,
    )
    assert response.status_code == 402
    body = response.json()
    assert body["error"] == "payment_declined"
    assert "card_declined" in body["message"]
    assert (
        shop.get(f"/api/orders/{body['details']['order_id']}", headers=auth).json()["status"]
        == "payment_declined"
    )
    assert _count_orders_and_stock(tmp_path / "shop.db", 5)[1] == stock_before


def test_payments_down_answers_502_and_restores_stock(
    make_shop: ShopFactory, tmp_path: Path
) -> None:
    """With payments unreachable, checkout answers 502 and no stock stays reserved."""
    shop = make_shop(payments_url="http://127.0.0.1:9", payments_timeout_seconds=1.0)
    auth = login(shop)
    _, stock_before = _count_orders_and_stock(tmp_path / "shop.db", 4)
    cart_id = new_cart(shop, (4, 1))
    response = shop.post(
        "/api/checkout", json={"cart_id": cart_id, "payment": {"method": "paypal"}}, headers=auth
    )
    assert response.status_code == 502
    assert response.json()["error"] == "payments_unavailable"
    assert _count_orders_and_stock(tmp_path / "shop.db", 4)[1] == stock_before


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error", "says"),
    [
        (
            "post",
            "/api/carts/{cart}/items",
            {"product_id": 999, "quantity": 1},
            404,
            "product_not_found",
            "product 999 does not exist",
        ),
        (
            "post",
            "/api/carts/{cart}/items",
            {"product_id": 1, "quantity": -2},
            422,
            "invalid_request",
            "body.quantity",
        ),
        (
            "post",
            "/api/carts/{cart}/items",
            {"product_id": 1, "quantity": 90},
            409,
            "insufficient_stock",
            "only 40 of product 1 left",
        ),
        (
            "post",
            "/api/carts/nope/items",
            {"product_id": 1, "quantity": 1},
            404,
            "cart_not_found",
            "'nope'",
        ),
        ("get", "/api/products/4242", None, 404, "product_not_found", "4242"),
        ("get", "/api/products?limit=1000", None, 422, "invalid_request", "query.limit"),
        ("get", "/api/nowhere", None, 404, "not_found", "Not Found"),
    ],
    ids=[
        "unknown-product",
        "negative-quantity",
        "over-stock",
        "unknown-cart",
        "missing-product",
        "limit-too-large",
        "unknown-route",
    ],
)
def test_bad_input_is_a_clear_4xx(
    shop: TestClient,
    method: str,
    path: str,
    body: dict[str, int] | None,
    status: int,
    error: str,
    says: str,
) -> None:
    """Bad input gets a 4xx whose JSON names the problem and carries the request id."""
    cart_id = new_cart(shop)
    response = getattr(shop, method)(path.format(cart=cart_id), **({"json": body} if body else {}))
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"] == error
    assert says in payload["message"]
    assert payload["request_id"] == response.headers["x-request-id"]
    assert shop.get(f"/api/carts/{cart_id}").json()["items"] == []


def test_malformed_json_is_400(shop: TestClient) -> None:
    """A body that is not JSON is refused with 400 saying where parsing failed."""
    cart_id = new_cart(shop)
    response = shop.post(
        f"/api/carts/{cart_id}/items",
        content=b'{"product_id": 1, "quantity": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert "not valid JSON" in response.json()["message"]


def test_oversized_body_is_413_and_nothing_written(shop: TestClient, tmp_path: Path) -> None:
    """A body over the limit is refused with 413 before any handler writes."""
    auth = login(shop)
    orders_before, _ = _count_orders_and_stock(tmp_path / "shop.db", 1)
    cart_id = new_cart(shop, (1, 1))
    padding = "x" * (70 * 1024)
    response = shop.post(
        "/api/checkout",
        json={"cart_id": cart_id, "payment": {"method": "paypal"}, "padding": padding},
        headers=auth,
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert _count_orders_and_stock(tmp_path / "shop.db", 1)[0] == orders_before


def test_checkout_failing_on_stock_writes_nothing(shop: TestClient, tmp_path: Path) -> None:
    """When one line is out of stock at checkout, no order exists and no stock moved."""
    auth = login(shop)
    cart_a = new_cart(shop, (9, 30))
    cart_b = new_cart(shop, (8, 1), (9, 30))
    first = shop.post(
        "/api/checkout", json={"cart_id": cart_a, "payment": {"method": "paypal"}}, headers=auth
    )
    assert first.status_code == 201
    orders_before, stock_8 = _count_orders_and_stock(tmp_path / "shop.db", 8)
    second = shop.post(
        "/api/checkout", json={"cart_id": cart_b, "payment": {"method": "paypal"}}, headers=auth
    )
    assert second.status_code == 409
    assert second.json()["error"] == "insufficient_stock"
    assert _count_orders_and_stock(tmp_path / "shop.db", 8) == (orders_before, stock_8)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"method": "card"}, "card_number is required"),
        ({"method": "bitcoin"}, "body.payment.method"),
        ({"method": "card", "card_number": "12ab"}, "body.payment.card_number"),
    ],
    ids=["card-without-number", "unknown-method", "garbage-card-number"],
)
def test_checkout_validates_payment(shop: TestClient, body: dict[str, str], says: str) -> None:
    """Invalid payment details are a 422 naming the field, before anything is reserved."""
    auth = login(shop)
    cart_id = new_cart(shop, (1, 1))
    response = shop.post("/api/checkout", json={"cart_id": cart_id, "payment": body}, headers=auth)
    assert response.status_code == 422
    assert says in response.json()["message"]


def test_checkout_needs_login(shop: TestClient) -> None:
    """Checkout without a session token is a 401 that says how to log in."""
    cart_id = new_cart(shop, (1, 1))
    response = shop.post(
        "/api/checkout", json={"cart_id": cart_id, "payment": {"method": "paypal"}}
    )
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["message"]


def test_login_logout_and_me(shop: TestClient) -> None:
    """A token works until logout; a wrong password is a 401."""
    auth = login(shop, "bob@example.com")
    assert shop.get("/api/me", headers=auth).json()["email"] == "bob@example.com"
    assert shop.post("/api/logout", headers=auth).status_code == 204
    assert shop.get("/api/me", headers=auth).status_code == 401
    wrong = shop.post("/api/login", json={"email": "bob@example.com", "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_credentials"


def test_orders_are_private(shop: TestClient) -> None:
    """One user cannot read another user's order."""
    alice = login(shop, "alice@example.com")
    bob = login(shop, "bob@example.com")
    cart_id = new_cart(shop, (1, 1))
    order = shop.post(
        "/api/checkout", json={"cart_id": cart_id, "payment": {"method": "paypal"}}, headers=alice
    ).json()
    assert shop.get(f"/api/orders/{order['id']}", headers=bob).status_code == 404
