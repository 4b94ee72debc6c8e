"""The storefront's pages: catalog, product, cart, checkout, login and order confirmation."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import Headers
from starlette.types import Scope

from lookout_demo import __version__
from lookout_demo.shop.deps import State
from lookout_demo.shop.models import Cart, Product
from lookout_demo.shop.routes.carts import MAX_QUANTITY, AddItem, CartOut, add_item, remove_item
from lookout_demo.shop.routes.carts import show_cart as render_cart
from lookout_demo.storefront.settings import StorefrontSettings
from lookout_demo.web.deps import DbSession
from lookout_demo.web.errors import ApiError

__all__ = [
    "BUNDLE_DIR",
    "CART_COOKIE",
    "STATIC_DIR",
    "STATIC_PREFIX",
    "StorefrontStatic",
    "bundle",
    "page_config",
    "router",
]

log = logging.getLogger("lookout_demo.storefront")

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
#: Where the bundle lands (demo-app/web/build.mjs writes it; git-ignored, in the wheel).
BUNDLE_DIR = STATIC_DIR / "dist"
STATIC_PREFIX = "/static/storefront"
#: The cart of this browser: an opaque id (the API's cart id), not readable by scripts.
CART_COOKIE = "lookout_cart"
#: A week: a cart outlives a closed tab, not a season.
CART_COOKIE_SECONDS = 7 * 24 * 3600

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

_bundle_warned = False
#: The bundle's entry points; build.mjs lists their content-hashed file names in manifest.json.
ENTRY_POINTS = ("telemetry", "errors", "app")
#: The telemetry's bootstrap, written into each page rather than linked (web/src/boot.js).
BOOT = "boot"


@functools.lru_cache(maxsize=1)
def _manifest(_mtime_ns: int) -> dict[str, str]:
    """Read manifest.json (again only when its mtime changes: a rebuild while serving).

    Each entry point maps to its URL; ``boot`` maps to the bootstrap's text, for inlining.
    """
    manifest = json.loads((BUNDLE_DIR / "manifest.json").read_text(encoding="utf-8"))
    urls = {name: f"{STATIC_PREFIX}/dist/{manifest[name]}" for name in ENTRY_POINTS}
    boot = (BUNDLE_DIR / manifest[BOOT]).read_text(encoding="utf-8").strip()
    if "</" in boot:
        msg = f"{BUNDLE_DIR / manifest[BOOT]}: contains '</', which would end its inline <script>"
        raise ValueError(msg)
    return {**urls, BOOT: boot}


def bundle() -> dict[str, str] | None:
    """Return the bundle's URL per entry point and the bootstrap's text, or None (warned once)."""
    global _bundle_warned  # noqa: PLW0603 - one warning per process, not per page view
    try:
        urls = _manifest((BUNDLE_DIR / "manifest.json").stat().st_mtime_ns)
    except (OSError, ValueError, KeyError):
        if not _bundle_warned:
            _bundle_warned = True
            log.warning(
                "storefront bundle missing: pages are served without scripts",
                extra={
                    "manifest": str(BUNDLE_DIR / "manifest.json"),
                    "fix": "cd demo-app/web && npm ci && npm run build",
                },
            )
        return None
    return urls


class StorefrontStatic(StaticFiles):
    """The stylesheet and the bundle: hashed bundle files cached for good, sent gzipped."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """Serve a file; a bundle script goes out as its precompressed .gz when accepted."""
        response = await super().get_response(path, scope)
        full = BUNDLE_DIR.parent / path
        gzipped = full.with_name(full.name + ".gz")
        accepts = "gzip" in Headers(scope=scope).get("accept-encoding", "")
        if response.status_code == 200 and accepts and full.suffix == ".js" and gzipped.is_file():
            response = FileResponse(
                gzipped,
                media_type="text/javascript",
                headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
            )
        if full.parent == BUNDLE_DIR and full.name != "manifest.json":
            # The name changes with the content, so a cached copy never goes stale.
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"  # revalidate: the name stays the same
        return response


def _traceparent() -> str | None:
    """Return the W3C traceparent of the server span rendering this page, if any."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def page_config(request: Request) -> dict[str, Any]:
    """Return what the page's scripts read: endpoints, release, this request's ids."""
    settings: StorefrontSettings = request.app.state.storefront
    shop = request.app.state.shop.settings
    scripts = (bundle() or {}) if settings.telemetry_enabled else {}
    return {
        "serviceName": "storefront",
        "release": f"lookout-storefront@{__version__}+{shop.revision}",
        "environment": shop.environment,
        "otlpTracesUrl": settings.otlp_traces_url,
        "sentryDsn": settings.sentry_dsn,
        "sampleRate": settings.trace_sample_rate,
        "requestId": getattr(request.state, "request_id", None),
        "traceparent": _traceparent(),
        # Loaded by the inline bootstrap after the page's load event, each only when configured.
        "telemetryScript": scripts.get("telemetry") if settings.otlp_traces_url else None,
        "errorsScript": scripts.get("errors") if settings.sentry_dsn else None,
    }


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    scripts = bundle() or {}
    config = page_config(request)
    telemetry = config["telemetryScript"] or config["errorsScript"]
    return templates.TemplateResponse(
        request,
        template,
        {
            "config": config,
            "static": STATIC_PREFIX,
            "app_script": scripts.get("app"),
            # Only when there is telemetry to load: without it app.js starts straight away.
            "boot_script": scripts.get(BOOT) if telemetry else None,
            "cart_count": context.pop("cart_count", None),
            **context,
        },
        status_code=status_code,
    )


async def _products(state: State, category: str | None = None) -> list[Product]:
    query = select(Product).order_by(Product.id)
    if category:
        query = query.where(Product.category == category)
    async with state.db.session() as session:
        return list((await session.execute(query)).scalars())


def _cart_id(request: Request) -> str | None:
    value = request.cookies.get(CART_COOKIE, "")
    return value if value.isalnum() and len(value) <= 64 else None


async def _cart(session: DbSession, request: Request) -> CartOut | None:
    cart_id = _cart_id(request)
    if cart_id is None:
        return None
    try:
        return await render_cart(cart_id, session)
    except ApiError:
        return None  # an expired or foreign cookie: start afresh


@router.get("/", response_class=HTMLResponse)
async def catalog_page(request: Request, state: State, category: str | None = None) -> Response:
    """List the catalog, optionally one category (a plain link per category)."""
    if category is not None and not (category.isalpha() and len(category) <= 40):
        category = None
    everything = await _products(state)
    categories = sorted({p.category for p in everything})
    shown = [p for p in everything if category is None or p.category == category]
    return _render(
        request, "catalog.html", products=shown, categories=categories, category=category
    )


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product_page(request: Request, product_id: int, session: DbSession) -> Response:
    """Show one product with its add-to-cart form."""
    product = await session.get(Product, product_id)
    if product is None:
        return _render(
            request,
            "error.html",
            status_code=404,
            title="Product not found",
            message=f"There is no product {product_id}.",
        )
    return _render(request, "product.html", product=product, max_quantity=MAX_QUANTITY)


@router.get("/cart", response_class=HTMLResponse)
async def cart_page(request: Request, session: DbSession) -> Response:
    """Show this browser's cart."""
    return _render(request, "cart.html", cart=await _cart(session, request), error=None)


async def _form(request: Request) -> dict[str, str]:
    """Parse an urlencoded form body (the pages post nothing else); {} if it has too many fields."""
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        fields = parse_qs(body, max_num_fields=10)
    except ValueError:  # more fields than any page's form has: answered as an empty form
        return {}
    return {k: v[0] for k, v in fields.items()}


@router.post("/cart/items", response_class=HTMLResponse)
async def add_to_cart(request: Request, session: DbSession, state: State) -> Response:
    """Add a product to this browser's cart (a cart is created on first use), then show it."""
    form = await _form(request)
    try:
        item = AddItem(
            product_id=int(form.get("product_id", "0")), quantity=int(form.get("quantity", "1"))
        )
    except (ValueError, ValidationError):
        return _render(
            request,
            "error.html",
            status_code=422,
            title="Could not add to cart",
            message=f"Choose a product and a quantity from 1 to {MAX_QUANTITY}.",
        )
    cart_id = _cart_id(request)
    if cart_id is None or await session.get(Cart, cart_id) is None:
        cart = Cart(items=[])
        session.add(cart)
        await session.commit()
        cart_id = cart.id
    try:
        await add_item(cart_id, item, session, state)
    except ApiError as exc:
        return _render(
            request,
            "cart.html",
            status_code=exc.status,
            cart=await render_cart(cart_id, session),
            error=exc.message,
        )
    redirect = RedirectResponse("/cart", status_code=303)
    redirect.set_cookie(
        CART_COOKIE,
        cart_id,
        max_age=CART_COOKIE_SECONDS,
        httponly=True,
        samesite="lax",
        # Over HTTPS, never sent over plain HTTP; the demo's http://127.0.0.1 keeps working.
        secure=request.url.scheme == "https",
    )
    return redirect


@router.post("/cart/items/{product_id}/remove", response_class=HTMLResponse)
async def remove_from_cart(request: Request, product_id: int, session: DbSession) -> Response:
    """Remove a product from this browser's cart, then show the cart."""
    cart_id = _cart_id(request)
    if cart_id is not None:
        # Already gone: the cart page shows what is left.
        with contextlib.suppress(ApiError):
            await remove_item(cart_id, product_id, session)
    return RedirectResponse("/cart", status_code=303)


@router.get("/checkout", response_class=HTMLResponse)
async def checkout_page(request: Request, session: DbSession) -> Response:
    """Show the payment form for this browser's cart (paid through the JSON API)."""
    return _render(request, "checkout.html", cart=await _cart(session, request))


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    """Show the login form (it posts to the JSON API and keeps the token in the tab)."""
    return _render(request, "login.html")


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_page(request: Request, order_id: str) -> Response:
    """Show an order confirmation; its details are read from the API with the tab's token."""
    if not (order_id.isalnum() and len(order_id) <= 64):
        return _render(
            request,
            "error.html",
            status_code=404,
            title="Order not found",
            message="That is not an order number.",
        )
    return _render(request, "order.html", order_id=order_id)


@router.post("/login", response_class=HTMLResponse)
@router.post("/checkout", response_class=HTMLResponse)
async def form_without_javascript(request: Request) -> Response:
    """Answer a login or payment form posted without JavaScript; its body is never read.

    The forms say ``method="post"`` so that, without the page script, a password or a card
    number is never put in a URL (and so in logs and history) by a default GET submission.
    """
    return _render(
        request,
        "error.html",
        status_code=400,
        title="This form needs JavaScript",
        message="Logging in and paying talk to the shop's API from the page: turn JavaScript on.",
    )
