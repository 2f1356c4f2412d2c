"""Starting a self-exclusion (SPEC 9): store it, audit it, and stop the user's paid subscriptions from
renewing.

The exclusion is stored first (``stores/self_exclusions.py``), so it applies at once whatever Stripe
does; then one audit record under the exclusion's business key; then every paid subscription of the
user that is still live is set to cancel at the end of its period, each with the idempotency key
``{business key}:{subscription id}``. Every step is safe to repeat, so a request that failed half way
(Stripe down) is completed by retrying it: the same user, day and period is the same exclusion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import stripe

from domain.compliance.audit import AuditRecord
from domain.compliance.self_exclusion import Period, SelfExclusion, in_force
from domain.errors import UserError
from domain.money.subscriptions import TERMINAL_STRIPE_STATUSES
from services.payments import Payments
from stores import audit
from stores.lake import Lake
from stores.self_exclusions import read_self_exclusions, record_self_exclusion


class ExclusionWouldShortenError(UserError):
    """The user is already excluded for longer than they now ask."""


@dataclass(frozen=True)
class Excluded:
    exclusion: SelfExclusion
    """The exclusion in force after the request."""
    created: bool
    """The request stored a new exclusion (False for a retry of the same one)."""


def summary(exclusion: SelfExclusion | None) -> dict[str, Any] | None:
    """An exclusion as the audit log and the API describe it."""
    if exclusion is None:
        return None
    return {
        "period": exclusion.period,
        "start": exclusion.start.isoformat(),
        "end": exclusion.end.isoformat() if exclusion.end else None,
    }


def exclude(lake: Lake, user_id: str, period: Period, now: dt.datetime) -> Excluded:
    """Exclude ``user_id`` from today (UTC) for ``period``, unless that would end before the exclusion
    already in force (:class:`ExclusionWouldShortenError`). Appends one audit record per exclusion."""
    asked = SelfExclusion(user_id, period, now.astimezone(dt.UTC).date(), now)
    current = in_force(read_self_exclusions(lake, user_id), asked.start)
    if current is not None and current.business_key == asked.business_key:
        asked, previous = current, None  # a retry: complete what the first request started
    elif current is None or asked.outlasts(current):
        previous = current
    else:
        until = "permanently" if current.end is None else f"until {current.end.isoformat()}"
        raise ExclusionWouldShortenError(
            f"you are already excluded {until}; a self-exclusion can be extended but never shortened"
        )
    created = record_self_exclusion(lake, asked)
    audit.append(
        lake,
        AuditRecord(
            business_key=asked.business_key,
            acted_at=asked.requested_at,
            actor=user_id,
            action="self_exclusion.started",
            object_type="user",
            object_id=user_id,
            before=summary(previous),
            after=summary(asked),
        ),
    )
    return Excluded(asked, created)


def stop_renewals(payments: Payments, subscription_ids: Iterable[str], exclusion: SelfExclusion) -> list[str]:
    """Set each live subscription of ``subscription_ids`` that still renews to cancel at the end of
    its period; returns those it changed. Ended, already cancelling and unknown ones are left alone."""
    changed = []
    for sub_id in sorted(set(subscription_ids)):
        try:
            sub = payments.client.v1.subscriptions.retrieve(sub_id)
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
            continue
        if sub.status in TERMINAL_STRIPE_STATUSES or sub.cancel_at_period_end:
            continue
        payments.cancel_subscription(sub_id, idempotency_key=f"{exclusion.business_key}:{sub_id}")
        changed.append(sub_id)
    return changed
