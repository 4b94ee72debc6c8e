"""The logged-in user's experiment variants and feature-flagged content."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from lookout_demo.shop import experiments
from lookout_demo.shop.deps import CurrentUser, State

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["experiments"])


class ExperimentsOut(BaseModel):
    """The user's variant of each running experiment, and the banner flag's text."""

    experiments: dict[str, str]
    banner: str


@router.get("/experiments")
async def my_experiments(user: CurrentUser, state: State) -> ExperimentsOut:
    """Show the user's variants (counted as assignments) and the current banner."""
    variants = experiments.assignments(str(user.id))
    if state.metrics is not None:
        for name, variant in variants.items():
            state.metrics.experiments.assignments.labels(name, variant).inc()
    banner = state.flags.text("catalog_banner", "", user_id=str(user.id))
    return ExperimentsOut(experiments=variants, banner=banner)
