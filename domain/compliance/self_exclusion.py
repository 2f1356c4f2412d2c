"""Self-exclusion (SPEC 9): a user shuts themselves out of picks and subscriptions for 30 days, 6
months, 1 year or for good, and nobody can lift it early.

An exclusion runs from its start day (UTC) up to, not including, its end day (none when permanent).
Exclusions are only ever added: while one lasts, a new one is taken only if it ends later (or is
permanent), so a request can extend an exclusion but never shorten it. The one in force is the
running exclusion that ends last.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

Period = Literal["30d", "6m", "1y", "permanent"]
PERIODS: tuple[Period, ...] = get_args(Period)


def _add_months(day: dt.date, months: int) -> dt.date:
    """``day`` ``months`` calendar months later, on the month's last day when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_day(start: dt.date, period: Period) -> dt.date | None:
    """The first day an exclusion of ``period`` starting on ``start`` no longer applies; None when
    permanent."""
    if period == "30d":
        return start + dt.timedelta(days=30)
    if period == "6m":
        return _add_months(start, 6)
    if period == "1y":
        return _add_months(start, 12)
    return None


@dataclass(frozen=True)
class SelfExclusion:
    user_id: str
    period: Period
    start: dt.date
    requested_at: dt.datetime

    @property
    def end(self) -> dt.date | None:
        return end_day(self.start, self.period)

    @property
    def business_key(self) -> str:
        """What makes a retried request the same exclusion: the user, the day and the period."""
        return f"self_exclusion:{self.user_id}:{self.start.isoformat()}:{self.period}"

    def applies_on(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)

    def outlasts(self, other: SelfExclusion) -> bool:
        """Ends strictly later than ``other`` (permanent outlasts everything but permanent)."""
        if self.end is None or other.end is None:
            return self.end is None and other.end is not None
        return self.end > other.end


def in_force(exclusions: Iterable[SelfExclusion], day: dt.date) -> SelfExclusion | None:
    """The exclusion applying on ``day`` that ends last (the earliest such start on a tie); None
    when the user is free."""
    running = sorted((e for e in exclusions if e.applies_on(day)), key=lambda e: e.start)
    best: SelfExclusion | None = None
    for exclusion in running:
        if best is None or exclusion.outlasts(best):
            best = exclusion
    return best
