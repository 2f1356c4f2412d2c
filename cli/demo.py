"""Sample users and their models for ``oddsforge demo``, registered exactly as the API would.

The demo follows the marketplace's rules: every model starts private (version 1); the shared ones
are backtested over the first six weeks of the season, and only then stored as a shared version 2
(the publishing rule of ``PUT /models``); paid ones are approved as an operator would
(``oddsforge review approve``); a few users subscribe to the free ones. Bob's "Closing line value"
(:data:`LOOP_MODEL`) is the money loop's: a subscriber pays for it through Checkout and bob archives
it, which refunds the unused days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from domain.marketplace.performance import can_publish, needs_review
from domain.marketplace.ratings import check_may_review
from domain.models.config import ModelConfig
from domain.models.registry import ENTROPY_BYTES, build_version, new_model_id
from services.backtests import backtest_model, best_backtest_graded, record_backtest
from stores.lake import Lake
from stores.ratings import RatingStore
from stores.registry import RegistryStore
from stores.reviews import decide
from stores.subscriptions import SubscriptionStore

CREATED_AT = dt.datetime(2025, 10, 1, 12, 0, tzinfo=dt.UTC)
PUBLISHED_AT = dt.datetime(2025, 12, 5, 12, 0, tzinfo=dt.UTC)
BACKTEST_DAYS = 42
"""The creators backtest their models over the season's first six weeks before sharing them."""
DEMO_OPERATOR = "demo-operator"

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


LOOP_MODEL: tuple[str, dict[str, Any]] = (
    "bob",
    {
        "name": "Closing line value",
        "description": "Sides the market moved towards, confirmed by net rating (no trial).",
        "sport": "basketball_nba",
        "market": "h2h",
        "data_sources": {
            "odds_movement": {"weight": 0.5, "time_window_hours": 24},
            "team_stats": {"weight": 0.5, "fields": ["net_rating"], "lookback_games": 10},
        },
        "min_confidence": 0.52,
        "max_confidence": 0.9,
        "sharing": {"public": True, "price_per_month": 12.0, "trial_days": 0},
    },
)
"""The paid model of the money loop (``cli/demo_money.py``), registered and published by the loop
after its creator's onboarding has started, as publishing a paid model requires."""

FREE_SUBSCRIPTIONS: list[tuple[str, str, str]] = [
    ("dave", "alice", "Form and steam"),
    ("dave", "carol", "Hot hands ATS"),
    ("erin", "carol", "Hot hands ATS"),
    ("frank", "alice", "Form and steam"),
]
"""(subscriber, creator, model name): free subscriptions to the shared free models."""
SUBSCRIBED_AT = dt.datetime(2025, 12, 6, 12, 0, tzinfo=dt.UTC)
DEMO_REVIEWS: list[tuple[str, str, str, int, str]] = [
    (
        "dave",
        "alice",
        "Form and steam",
        4,
        "Follows the steam without chasing it; a quiet week now and then.",
    ),
    ("frank", "alice", "Form and steam", 5, "Clear picks, and the misses are explained by the lines."),
    ("erin", "carol", "Hot hands ATS", 3, "Good against the spread at home, too eager on the road."),
]
"""(author, creator, model name, stars, text): users' reviews of the shared free models."""
REVIEWED_AT = SUBSCRIBED_AT + dt.timedelta(days=8)
"""After the week of access a review needs (SPEC 6)."""


def demo_model_id(user: str, name: str) -> str:
    """A demo model's id, derived from its owner and name so that every run finds the same models."""
    entropy = hashlib.sha256(f"{user}/{name}".encode()).digest()[:ENTROPY_BYTES]
    return new_model_id(user, name, entropy)


LOOP_MODEL_ID = demo_model_id(LOOP_MODEL[0], LOOP_MODEL[1]["name"])


def _private(body: dict[str, Any]) -> dict[str, Any]:
    return body | {"sharing": body["sharing"] | {"public": False}}


def register_demo_models(lake: Lake, models: list[tuple[str, dict[str, Any]]] = DEMO_MODELS) -> list[str]:
    """Store version 1 of each demo model, private (idempotent: ids derive from user and name)."""
    store = RegistryStore(lake)
    ids = []
    for user, body in models:
        model_id = demo_model_id(user, body["name"])
        config = build_version(
            _private(body),
            model_id=model_id,
            owner_user_id=user,
            version=1,
            created_at=CREATED_AT,
            updated_at=CREATED_AT,
        )
        store.create_version(config)
        ids.append(model_id)
    return ids


def publish_demo_models(
    lake: Lake, start: dt.date, models: list[tuple[str, dict[str, Any]]] = DEMO_MODELS
) -> list[dict[str, Any]]:
    """Backtest version 1 of each model meant to be shared over ``BACKTEST_DAYS`` from ``start``,
    record the report, and store the shared version 2 once the publishing rule allows it; approve
    paid ones as the operator. Idempotent."""
    store = RegistryStore(lake)
    published = []
    for user, body in models:
        if not body["sharing"].get("public"):
            continue
        model_id = demo_model_id(user, body["name"])
        state = store.state(model_id)
        if state is None:
            raise LookupError(f"demo model {model_id} is not registered")
        first = ModelConfig.model_validate(store.read(state, 1).payload)
        end = start + dt.timedelta(days=BACKTEST_DAYS - 1)
        report = backtest_model(lake, first, start, end)
        record_backtest(lake, report)
        allowed, why = can_publish(best_backtest_graded(lake, model_id))
        if not allowed:
            raise RuntimeError(f"demo model {model_id} cannot be published: {why}")
        shared = build_version(
            body,
            model_id=model_id,
            owner_user_id=user,
            version=2,
            created_at=CREATED_AT,
            updated_at=PUBLISHED_AT,
        )
        store.create_version(shared)
        if needs_review(shared.sharing.price_cents):
            decide(lake, model_id, "approve", "demo: reviewed and approved", DEMO_OPERATOR, PUBLISHED_AT)
        published.append({"model_id": model_id, "backtest_graded": report["summary"]["graded"], "why": why})
    return published


def subscribe_demo_users(lake: Lake) -> int:
    """The demo's free subscriptions, stored as the API stores them (idempotent)."""
    store = SubscriptionStore(lake)
    for subscriber, creator, name in FREE_SUBSCRIPTIONS:
        store.subscribe(subscriber, demo_model_id(creator, name), creator, SUBSCRIBED_AT)
    return len(FREE_SUBSCRIPTIONS)


def review_demo_models(lake: Lake) -> int:
    """The demo's reviews, stored as the API stores them after its checks (idempotent: a user's
    second review of a model is refused, as the API refuses it); the number stored by this run."""
    subscriptions, ratings = SubscriptionStore(lake), RatingStore(lake)
    stored = 0
    for author, creator, name, stars, text in DEMO_REVIEWS:
        model_id = demo_model_id(creator, name)
        access = subscriptions.state(author, model_id)
        check_may_review(
            author, creator, access.started_at if access and access.active else None, REVIEWED_AT
        )
        stored += ratings.post(model_id, author, stars, text, REVIEWED_AT) is not None
    return stored


def demo_reviews(lake: Lake) -> list[dict[str, Any]]:
    """The visible reviews of the demo's models as the API lists them (author, stars, text)."""
    models = {demo_model_id(creator, name) for _, creator, name, _, _ in DEMO_REVIEWS}
    store = RatingStore(lake)
    return [
        {"model_id": r.model_id, "user_id": r.user_id, "stars": r.current.stars, "text": r.current.text}
        for model_id in sorted(models)
        for r in store.of_model(model_id)
        if r.visibility == "visible"
    ]
