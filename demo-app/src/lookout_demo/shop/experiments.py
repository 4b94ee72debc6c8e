"""A/B experiments: each user is assigned a variant by a stable hash, conversions counted.

``assign(experiment, user_id)`` hashes ``<experiment>:<user id>`` (SHA-256) into
[0, 1) and picks the variant whose cumulative weight covers it: the same user always gets
the same variant, in every replica and after restarts, with no stored assignment. The shop
counts an assignment each time it shows a user their variants (``GET /api/experiments``:
``experiment_assignments_total{experiment, variant}``) and a conversion for each paid order
(``experiment_conversions_total``); the conversion rate is their ratio per variant.
"""

from __future__ import annotations

import hashlib

__all__ = ["EXPERIMENTS", "assign", "assignments"]

#: Experiment -> (variant, weight) pairs; weights of one experiment add up to 1.
EXPERIMENTS: dict[str, tuple[tuple[str, float], ...]] = {
    "checkout_button": (("control", 0.5), ("one_click", 0.5)),
    "free_shipping_banner": (("control", 0.8), ("banner", 0.2)),
}


def _unit(experiment: str, user_id: str) -> float:
    """Map (experiment, user) to a stable number in [0, 1)."""
    digest = hashlib.sha256(f"{experiment}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: str, user_id: str) -> str:
    """Return the user's variant of an experiment (always the same for the same user)."""
    variants = EXPERIMENTS[experiment]
    point = _unit(experiment, user_id)
    total = 0.0
    for variant, weight in variants:
        total += weight
        if point < total:
            return variant
    return variants[-1][0]


def assignments(user_id: str) -> dict[str, str]:
    """Return the user's variant of every experiment."""
    return {name: assign(name, user_id) for name in EXPERIMENTS}
