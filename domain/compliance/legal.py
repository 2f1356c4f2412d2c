"""What OddsForge tells every reader of picks, figures and listings (SPEC 9), in one place."""

from __future__ import annotations

DISCLAIMERS = (
    "OddsForge's analyses are for entertainment only.",
    "Past results do not predict future ones.",
    "OddsForge places no bets and takes no wagers.",
)
DISCLAIMER = " ".join(DISCLAIMERS)
"""The ``disclaimer`` field of every response that carries picks, model figures or listings."""

HELP_LINES = (
    ("US", "National Problem Gambling Helpline", "1-800-GAMBLER"),
    ("US", "National Council on Problem Gambling (NCPG)", "1-800-522-4700"),
)
"""Responsible-gambling help: (country, name, phone)."""

DEFAULT_TERMS_VERSION = "2026-12-01"
"""The user and creator terms in force unless the operator sets ``ODDSFORGE_USER_TERMS_VERSION`` or
``ODDSFORGE_CREATOR_TERMS_VERSION``."""
