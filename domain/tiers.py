"""Account tiers (seed Q8): what a caller's plan allows, read from the bearer token's ``tier`` claim.

No claim, or a value that is not a tier, means ``free`` (the least a user can be given). The limits
per tier are each feature's own: datasets in ``domain.datasets.registry``, models in
``domain.models.tiers``.
"""

from __future__ import annotations

from typing import Literal, get_args

Tier = Literal["free", "pro", "enterprise"]
TIERS: tuple[Tier, ...] = get_args(Tier)
DEFAULT_TIER: Tier = "free"


def tier_of(claim: object) -> Tier:
    """The tier a token's ``tier`` claim names (case-insensitive); anything else is ``free``."""
    name = claim.strip().lower() if isinstance(claim, str) else ""
    return next((t for t in TIERS if t == name), DEFAULT_TIER)
