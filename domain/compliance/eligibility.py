"""Who may see picks (SPEC 9): an age at least the region's minimum, in a region that is not blocked.

The identity provider's token carries ``birthdate`` (``YYYY-MM-DD``) and ``region`` (ISO 3166-2 such
as ``US-NY``, or a country code such as ``GB``). The minimum age is the operator's override for the
region, else for its country, else 21 in the United States and 18 elsewhere; a region is blocked when
it or its country is on the operator's list. A region that is missing or unreadable counts as
blocked: where a user is cannot be told, so it cannot be told that serving them is lawful.

Age is counted on a calendar day the caller chooses (:func:`verification_day`: the date where it is
earliest on earth, so nobody is let in before their birthday has begun where they are). Someone born
on 29 February comes of age on 1 March in common years.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

US_MINIMUM_AGE = 21
DEFAULT_MINIMUM_AGE = 18
EARLIEST_ZONE = dt.timezone(dt.timedelta(hours=-12))
"""The last time zone to reach a date (UTC-12)."""

_REGION = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Refusal = Literal["region_blocked", "age_verification_required"]


def parse_region(text: object) -> str | None:
    """``text`` as an upper-case ISO 3166-2 code (``US-NY``) or country code (``GB``); None otherwise."""
    if not isinstance(text, str):
        return None
    region = text.strip().upper()
    return region if _REGION.fullmatch(region) else None


def parse_birthdate(text: object) -> dt.date | None:
    """A ``YYYY-MM-DD`` birthdate; None for anything else (OIDC's ``0000-MM-DD`` or a bare year too)."""
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def age_on(birthdate: dt.date, day: dt.date) -> int:
    """Whole years from ``birthdate`` to ``day``: one more on each birthday (1 March for 29 February
    in a common year), never negative."""
    years = day.year - birthdate.year - ((day.month, day.day) < (birthdate.month, birthdate.day))
    return max(years, 0)


def verification_day(now: dt.datetime) -> dt.date:
    """The calendar day ages are counted on at ``now``: the date in :data:`EARLIEST_ZONE`."""
    return now.astimezone(EARLIEST_ZONE).date()


def _codes(text: str, name: str) -> list[str]:
    codes = []
    for part in (p.strip() for p in text.split(",")):
        region = parse_region(part)
        if part and region is None:
            raise ValueError(f"{name}: {part!r} is not a region code such as US-NY or GB")
        if region:
            codes.append(region)
    return codes


@dataclass(frozen=True)
class RegionPolicy:
    """The operator's rules: blocked regions and minimum-age overrides (by region or country)."""

    blocked: frozenset[str] = frozenset()
    minimum_ages: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, blocked: str = "", minimum_ages: str = "") -> RegionPolicy:
        """From ``US-WA,US-ID`` and ``US-NY=21,GB=18`` (the settings' text); raises ValueError
        naming the bad part."""
        overrides = {}
        for part in (p.strip() for p in minimum_ages.split(",") if p.strip()):
            region_text, _, age_text = part.partition("=")
            region, age_text = parse_region(region_text), age_text.strip()
            if region is None or not age_text.isdigit() or not 0 < int(age_text) < 100:
                raise ValueError(f"minimum age: {part!r} is not REGION=AGE such as US-NY=21")
            overrides[region] = int(age_text)
        return cls(frozenset(_codes(blocked, "blocked regions")), overrides)

    def minimum_age(self, region: str) -> int:
        country = region[:2]
        default = US_MINIMUM_AGE if country == "US" else DEFAULT_MINIMUM_AGE
        return self.minimum_ages.get(region, self.minimum_ages.get(country, default))

    def is_blocked(self, region: str) -> bool:
        return region in self.blocked or region[:2] in self.blocked

    def refusal(self, birthdate: object, region: object, day: dt.date) -> tuple[Refusal, str] | None:
        """Why the holder of these claims may not see picks on ``day`` (the code and a message), or
        None. The region is judged first: a blocked place answers the same whatever the age."""
        place = parse_region(region)
        if place is None:
            return "region_blocked", "your identity carries no region we can recognise"
        if self.is_blocked(place):
            return "region_blocked", f"OddsForge's picks are not available in {place}"
        minimum = self.minimum_age(place)
        born = parse_birthdate(birthdate)
        if born is None:
            return "age_verification_required", f"a verified birthdate is required (minimum age {minimum})"
        if age_on(born, day) < minimum:
            return "age_verification_required", f"you must be at least {minimum} in {place}"
        return None
