"""The demo catalog and accounts, inserted on first start."""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lookout_demo.shop.models import Product, User
from lookout_demo.shop.passwords import hash_password

__all__ = ["AGE_RESTRICTED_SKUS", "DEMO_PASSWORD", "DEMO_USERS", "PRODUCTS", "seed"]

#: (sku, name, category, price in cents, stock, description)
PRODUCTS: tuple[tuple[str, str, str, int, int, str], ...] = (
    ("TEL-001", "Brass telescope", "optics", 18900, 40, "A 60 mm refractor for the balcony."),
    ("TEL-002", "Star chart", "optics", 1500, 500, "Both hemispheres, glow-in-the-dark."),
    ("BIN-001", "Field binoculars", "optics", 9900, 80, "10x42, waterproof."),
    ("LAN-001", "Storm lantern", "outdoor", 3400, 200, "Wind-proof, runs 40 hours."),
    ("TEN-001", "Two-person tent", "outdoor", 14900, 60, "Three seasons, 2.1 kg."),
    ("BAG-001", "Sleeping bag", "outdoor", 8900, 90, "Comfort to -5 C."),
    ("CMP-001", "Pocket compass", "navigation", 2400, 300, "Liquid-filled, with clinometer."),
    ("MAP-001", "Trail map set", "navigation", 1900, 400, "Twelve waterproof sheets."),
    ("GPS-001", "Handheld GPS", "navigation", 22900, 30, "Topographic maps, 16 h battery."),
    ("WAT-001", "Water filter", "outdoor", 3900, 150, "Hollow fibre, 1,000 litres."),
    ("LOG-001", "Logbook", "stationery", 1200, 600, "Weather-proof paper, 120 pages."),
    ("PEN-001", "Space pen", "stationery", 2900, 250, "Writes upside down and in the cold."),
    ("OIL-001", "Lamp oil", "outdoor", 1100, 120, "For storm lanterns; sold to adults only."),
)
#: SKUs that need an age verification at checkout (the compliance demo).
AGE_RESTRICTED_SKUS = frozenset({"OIL-001"})

#: The demo's password for every seeded account: public, for the demo only.
DEMO_PASSWORD = "lookout-demo"  # noqa: S105 - a documented demo credential
#: (email, name) of the seeded accounts; load tests and synthetic journeys log in as these.
DEMO_USERS: tuple[tuple[str, str], ...] = (
    ("alice@example.com", "Alice"),
    ("bob@example.com", "Bob"),
    *((f"load{n:02d}@example.com", f"Load user {n}") for n in range(1, 11)),
)


async def seed(conn: AsyncConnection, *, password_iterations: int) -> None:
    """Insert the catalog products that are missing (by SKU), and the demo accounts once."""
    present = set((await conn.execute(select(Product.sku))).scalars())
    missing = [
        {
            "sku": sku,
            "name": name,
            "category": category,
            "price_cents": price,
            "stock": stock,
            "description": description,
            "age_restricted": sku in AGE_RESTRICTED_SKUS,
        }
        for sku, name, category, price, stock, description in PRODUCTS
        if sku not in present
    ]
    if missing:
        await conn.execute(insert(Product), missing)
    if not (await conn.execute(select(func.count()).select_from(User))).scalar_one():
        await conn.execute(
            insert(User),
            [
                {
                    "email": email,
                    "name": name,
                    "password_hash": hash_password(DEMO_PASSWORD, password_iterations),
                }
                for email, name in DEMO_USERS
            ],
        )
