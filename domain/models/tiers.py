"""Model limits per tier (SPEC 6, seed Q8): how many active and how many public models a creator
may have. The one rule the API enforces on create and publish and the builder catalogue lists.

Archived models do not count; every other model does (a suspended model is still its creator's,
and may come back). A model is public when its latest version says ``sharing.public``. Only what a
write *adds* is checked: a model that becomes public, or a new model. So after a downgrade a
creator over the limit can still edit, unpublish and archive, but not add.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import UserError
from domain.tiers import Tier


@dataclass(frozen=True)
class ModelQuota:
    """A tier's model limits; None means unlimited."""

    max_active: int | None
    max_public: int | None


MODEL_QUOTAS: dict[Tier, ModelQuota] = {
    "free": ModelQuota(3, 1),
    "pro": ModelQuota(25, 10),
    "enterprise": ModelQuota(None, None),
}


@dataclass(frozen=True)
class ModelCounts:
    """A creator's models that count against the limits (not archived), and how many are public."""

    active: int
    public: int


class TierLimitError(UserError):
    """A write would take a creator over a limit of their tier; ``field`` is the setting it is
    about (empty for a new model as such)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def check_model_limits(tier: Tier, counts: ModelCounts, *, adds_model: bool, makes_public: bool) -> None:
    """Raise :class:`TierLimitError` naming the limit if adding a model (``adds_model``) or making
    one public (``makes_public``) would exceed ``tier``'s quota, given the creator's ``counts``
    before the write."""
    quota = MODEL_QUOTAS[tier]
    how = "archive one or upgrade your tier"
    if adds_model and quota.max_active is not None and counts.active >= quota.max_active:
        raise TierLimitError(
            f"{tier} tier: at most {quota.max_active} active models; you have {counts.active}; {how}"
        )
    if makes_public and quota.max_public is not None and counts.public >= quota.max_public:
        noun = "model" if quota.max_public == 1 else "models"
        raise TierLimitError(
            f"{tier} tier: at most {quota.max_public} public {noun}; you have {counts.public}; "
            f"unpublish or archive one, or upgrade your tier",
            "sharing.public",
        )
