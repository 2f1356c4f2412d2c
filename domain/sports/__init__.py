"""The sports the platform knows: one module per sport, gathered in :data:`SPORTS`.

Each module (``nba.py``, ``nfl.py``) defines one :class:`~domain.sports.sport.Sport`: key, id prefix,
game length, seasons and their labels, the local time zone and start of games, teams and their other
spellings, plausible line ranges, the ingest cadence and the field catalogue. Everything else reads
the sport from here by key and never branches on it. Adding a sport: one module, one line below.
"""

from __future__ import annotations

from domain.sports.nba import NBA
from domain.sports.nfl import NFL
from domain.sports.sport import Sport

SPORTS: dict[str, Sport] = {s.key: s for s in (NBA, NFL)}


def sport_info(sport: str) -> Sport:
    """Look up a sport key; unknown keys raise with the supported ones listed."""
    try:
        return SPORTS[sport]
    except KeyError:
        raise ValueError(f"unknown sport {sport!r}; supported: {', '.join(SPORTS)}") from None
