"""Login, logout and the current account."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from lookout_demo.shop.deps import CurrentUser, State, token_hash
from lookout_demo.shop.models import Session, User
from lookout_demo.shop.passwords import verify_password
from lookout_demo.shop.security import fingerprint
from lookout_demo.web.deps import DbSession
from lookout_demo.web.errors import ApiError
from lookout_telemetry.context import user_id_var

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["auth"])


class LoginIn(BaseModel):
    """Credentials."""

    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    """The account of the logged-in user."""

    id: int
    email: str
    name: str


class LoginOut(BaseModel):
    """A new session."""

    token: str
    expires_at: datetime
    user: UserOut


@router.post("/login")
async def login(body: LoginIn, request: Request, session: DbSession, state: State) -> LoginOut:
    """Exchange credentials for a bearer token."""
    client = request.client.host if request.client else "unknown"
    blocked = await state.guard.blocked(body.email, client)
    audit = request.app.state.audit
    actor = f"account:{fingerprint(body.email)}"
    if blocked is not None:
        await state.guard.refused(body.email, client, blocked)
        await audit.append("security", "login_blocked", actor=actor, details={"client": client})
        raise ApiError(
            429,
            "too_many_failed_logins",
            "too many failed logins; wait before trying again",
        )
    user = (
        await session.execute(select(User).where(User.email == body.email.strip().lower()))
    ).scalar_one_or_none()
    if user is None or not verify_password(body.password, user.password_hash):
        reason = "unknown_user" if user is None else "bad_password"
        await state.guard.failed(body.email, client, reason)
        await audit.append(
            "security", "login_failed", actor=actor, details={"client": client, "reason": reason}
        )
        raise ApiError(401, "invalid_credentials", "the e-mail or password is wrong")
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(seconds=state.settings.session_ttl_seconds)
    session.add(Session(token_hash=token_hash(token), user_id=user.id, expires_at=expires_at))
    await session.commit()
    await state.guard.succeeded(body.email)
    await audit.append(
        "security", "login_succeeded", actor=f"user:{user.id}", details={"client": client}
    )
    request.state.user_id = user.id
    user_id_var.set(str(user.id))
    return LoginOut(
        token=token,
        expires_at=expires_at,
        user=UserOut(id=user.id, email=user.email, name=user.name),
    )


@router.post("/logout", status_code=204)
async def logout(request: Request, user: CurrentUser, session: DbSession) -> Response:
    """End the current session."""
    token = request.headers["authorization"].partition(" ")[2].strip()
    await session.execute(delete(Session).where(Session.token_hash == token_hash(token)))
    await session.commit()
    return Response(status_code=204)


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    """Show the logged-in account."""
    return UserOut(id=user.id, email=user.email, name=user.name)
