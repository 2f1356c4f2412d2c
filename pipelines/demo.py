"""Sample users and their models for ``oddsforge demo``, registered exactly as the API would."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from domain.registry import ENTROPY_BYTES, build_version, new_model_id
from resources.lake import Lake
from resources.registry_store import RegistryStore

CREATED_AT = dt.datetime(2025, 10, 1, 12, 0, tzinfo=dt.UTC)

DEMO_MODELS: list[tuple[str, dict[str, Any]]] = [
    (
        "alice",
        {
            "name": "Form and steam",
            "description": "Recent efficiency against the league, plus line movement towards a side.",
            "sport": "basketball_nba",
            "market": "spreads",
            "data_sources": {
                "team_stats": {
                    "weight": 0.6,
                    "fields": ["offensive_rating", "defensive_rating", "pace"],
                    "lookback_games": 10,
                },
                "odds_movement": {"weight": 0.4, "time_window_hours": 48},
            },
            "min_confidence": 0.55,
            "max_confidence": 0.9,
            "sharing": {"public": True, "price_per_month": 0},
        },
    ),
    (
        "alice",
        {
            "name": "Pace and points totals",
            "description": "Fast, efficient teams on both sides lean over.",
            "sport": "basketball_nba",
            "market": "totals",
            "data_sources": {
                "team_stats": {"weight": 0.7, "fields": ["pace", "offensive_rating"], "lookback_games": 8},
                "historical_performance": {"weight": 0.3, "lookback_days": 45},
            },
            "min_confidence": 0.55,
            "max_confidence": 0.85,
            "sharing": {"public": False},
        },
    ),
    (
        "bob",
        {
            "name": "Rotation strength",
            "description": "Per-game production of rotation players, weighted by recent hit rates.",
            "sport": "basketball_nba",
            "market": "h2h",
            "data_sources": {
                "player_stats": {"weight": 0.5, "fields": ["PTS", "REB", "AST"], "min_minutes": 20},
                "team_stats": {"weight": 0.3, "fields": ["net_rating"], "lookback_games": 15},
                "odds_movement": {"weight": 0.2, "time_window_hours": 24},
            },
            "dynamic_weighting": True,
            "min_confidence": 0.6,
            "max_confidence": 0.95,
            "sharing": {"public": True, "price_per_month": 9.99, "trial_days": 7},
        },
    ),
    (
        "bob",
        {
            "name": "Sharp money",
            "description": "Follows reverse line movement only.",
            "sport": "basketball_nba",
            "market": "spreads",
            "data_sources": {"odds_movement": {"weight": 1.0, "time_window_hours": 36}},
            "min_confidence": 0.55,
            "max_confidence": 0.8,
            "sharing": {"public": False},
        },
    ),
    (
        "carol",
        {
            "name": "Hot hands ATS",
            "description": "Teams covering lately keep covering (shrunk rates over 30 days).",
            "sport": "basketball_nba",
            "market": "spreads",
            "data_sources": {"historical_performance": {"weight": 1.0, "lookback_days": 30}},
            "min_confidence": 0.52,
            "max_confidence": 0.7,
            "sharing": {"public": True, "price_per_month": 0},
        },
    ),
]


def register_demo_models(lake: Lake) -> list[str]:
    """Store version 1 of each demo model (idempotent: ids are derived from user and name)."""
    store = RegistryStore(lake)
    ids = []
    for user, body in DEMO_MODELS:
        entropy = hashlib.sha256(f"{user}/{body['name']}".encode()).digest()[:ENTROPY_BYTES]
        model_id = new_model_id(user, body["name"], entropy)
        config = build_version(
            body,
            model_id=model_id,
            owner_user_id=user,
            version=1,
            created_at=CREATED_AT,
            updated_at=CREATED_AT,
        )
        store.create_version(config)
        ids.append(model_id)
    return ids
