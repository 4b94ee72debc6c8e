"""Dependencies every service's routes share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from lookout_demo.storage.database import Database

__all__ = ["DbSession"]


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.session() as session:
        yield session


#: A database session for one request, its connection already taken from the pool.
DbSession = Annotated[AsyncSession, Depends(_session)]
