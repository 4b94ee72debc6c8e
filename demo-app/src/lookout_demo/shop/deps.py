"""The shop's FastAPI dependencies, as ``Annotated`` aliases."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select

from lookout_demo.flags import FeatureFlags
from lookout_demo.settings import ShopSettings
from lookout_demo.shop.models import Session, User
from lookout_demo.shop.payments_client import PaymentsClient
from lookout_demo.shop.security import LoginGuard
from lookout_demo.storage.cache import Cache
from lookout_demo.storage.database import Database
from lookout_demo.telemetry.metrics import ShopMetrics
from lookout_demo.web.deps import DbSession
from lookout_demo.web.errors import ApiError
from lookout_telemetry.context import user_id_var

__all__ = ["CurrentUser", "ShopState", "State", "token_hash"]


@dataclass
class ShopState:
    """Everything the shop's handlers use, built once per app."""

    settings: ShopSettings
    db: Database
    cache: Cache
    metrics: ShopMetrics | None
    payments: PaymentsClient
    guard: LoginGuard
    flags: FeatureFlags


def _state(request: Request) -> ShopState:
    state: ShopState = request.app.state.shop
    return state


State = Annotated[ShopState, Depends(_state)]


def token_hash(token: str) -> str:
    """Return what the sessions table stores for a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def _current_user(request: Request, session: DbSession) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "log in first: send 'Authorization: Bearer <token>'")
    row = (
        await session.execute(
            select(User)
            .join(Session, Session.user_id == User.id)
            .where(Session.token_hash == token_hash(token.strip()))
            .where(Session.expires_at > datetime.now(UTC))
        )
    ).scalar_one_or_none()
    if row is None:
        raise ApiError(401, "unauthorized", "the session token is unknown or has expired")
    request.state.user_id = row.id
    user_id_var.set(str(row.id))
    return row


CurrentUser = Annotated[User, Depends(_current_user)]
