"""The marketplace: subscriptions, every model's listing status, and the notification outbox.

- ``subscriptions`` folds free subscription events (``inbox/subscriptions/``, written by the API) and
  Stripe's subscription webhooks (``inbox/stripe/events/``) into one table, the latest state of every
  subscription; an inbox sensor (``pipelines/sensors.py``) asks for a run that merges exactly the new
  objects.
- ``model_status`` applies SPEC 6 after each performance update: listing (public, reviewed when
  paid), automatic suspension (three consecutive failing daily evaluations), notifications to
  subscribers (a new version of a shared model, a suspension, an archive) and to followers of its
  creator (a newly listed model, read from the ``follows`` table) appended to
  ``tables/notifications``, and one audit record per suspension or archive.
  A sensor re-runs it when an operator records a review.
- ``user_reviews`` folds users' reviews of models (``inbox/ratings/``: texts, replies, helpful votes,
  reports, operators' decisions) into one row per review; the ``model_ratings`` mart averages them.

No ``from __future__ import annotations`` here: Dagster reads the ``config`` annotation unevaluated.
"""

import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from assets.analyses import read_model_versions
from assets.common import SportsConfig, markdown_table
from domain.marketplace.listing import (
    MODEL_STATUS,
    NOTIFICATIONS,
    append_notifications,
    fold_subscriptions,
    latest_versions,
    listing_status,
    notifications,
    status_audit_records,
    status_table,
    sticky_suspensions,
    suspensions,
)
from domain.marketplace.notify import FOLLOWS, new_public_model_notifications
from domain.marketplace.performance import MODEL_PERFORMANCE, ROLLING_DAYS
from domain.marketplace.ratings import USER_REVIEWS, replace_reviews, review_rows
from domain.money.subscriptions import SUBSCRIPTIONS, with_access
from stores import audit
from stores.lake import Lake
from stores.layout import (
    STRIPE_EVENTS_INBOX,
    SUBSCRIPTIONS_INBOX,
    table_key,
    table_prefix,
)
from stores.ratings import RatingStore
from stores.reviews import ReviewStore
from stores.stripe_events import read_events
from stores.subscriptions import SubscriptionStore

SUBSCRIPTIONS_KEY = table_key("subscriptions")
MODEL_STATUS_KEY = table_key("model_status")
NOTIFICATIONS_KEY = table_key("notifications")
USER_REVIEWS_KEY = table_key("user_reviews")
FOLLOWS_KEY = table_key("follows")

EVALUATION_DAYS = 7
"""Daily evaluations re-checked by each run (the last performance dates of each sport), so a day the
asset did not run is still judged."""
HISTORY_DAYS = 2 * ROLLING_DAYS
"""Performance rows read before the latest date: long enough for three evaluations of a weekly sport."""


def read_table(lake: Lake, key: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An unpartitioned table, or an empty one of ``schema`` before its first run."""
    return lake.read_parquet([key], schema) if lake.exists(key) else pl.DataFrame(schema=schema)


class SubscriptionsConfig(dg.Config):
    keys: list[str] = Field(default_factory=list)
    """Free subscription events and Stripe events to fold into the table; empty rebuilds it from
    every object in both inboxes."""


@dg.asset(
    group_name="marketplace",
    kinds={"polars", "parquet"},
    description="The latest state of every subscription, free (subscribe / unsubscribe events from "
    "the API) and paid (Stripe's customer.subscription and invoice payment webhooks): user, model, "
    "creator, status (trial, active, past_due, cancelled, expired), past due since, start, trial end "
    "and next billing date.",
)
def subscriptions(
    context: dg.AssetExecutionContext, config: SubscriptionsConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    store = SubscriptionStore(lake)
    if config.keys:
        if bad := [k for k in config.keys if not k.startswith((SUBSCRIPTIONS_INBOX, STRIPE_EVENTS_INBOX))]:
            raise ValueError(f"not subscription or Stripe events: {', '.join(bad)}")
        previous: pl.DataFrame | None = read_table(lake, SUBSCRIPTIONS_KEY, SUBSCRIPTIONS)
        free_keys = [k for k in config.keys if k.startswith(SUBSCRIPTIONS_INBOX)]
        stripe_keys = [k for k in config.keys if k.startswith(STRIPE_EVENTS_INBOX)]
    else:
        previous = None
        free_keys = list(store.inbox_keys())
        stripe_keys = [k for k in lake.list_keys(STRIPE_EVENTS_INBOX) if k.endswith(".json")]
    table = fold_subscriptions(previous, store.load(free_keys), read_events(lake, stripe_keys))
    lake.write_parquet(SUBSCRIPTIONS_KEY, table)
    context.log.info("folded %d free and %d Stripe events", len(free_keys), len(stripe_keys))
    live = with_access(table, dt.datetime.now(dt.UTC))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "mode": "incremental" if config.keys else "full rebuild",
            "free_events": len(free_keys),
            "stripe_events": len(stripe_keys),
            "with_access": live.height,
            "paid_with_access": live.filter(pl.col("price_cents") > 0).height,
            "preview": dg.MetadataValue.md(
                markdown_table(
                    table.sort("event_created", descending=True).select(
                        "user_id", "model_id", "status", "price_cents", "start_date"
                    )
                )
            ),
        }
    )


def performance_history(lake: Lake, sports: list[str]) -> tuple[pl.DataFrame, list[dt.date]]:
    """``model_performance`` rows of the :data:`HISTORY_DAYS` up to each sport's latest day, and the
    days to evaluate: each sport's last :data:`EVALUATION_DAYS` days with rows."""
    frames, days = [], set()
    for sport in sports:
        held = sorted({day for day, _, _ in lake.held_days(table_prefix("model_performance", sport))})
        if not held:
            continue
        since, end = held[-1] - dt.timedelta(days=HISTORY_DAYS - 1), held[-1] + dt.timedelta(days=1)
        frames.append(lake.read_table("model_performance", sport, since, end, MODEL_PERFORMANCE))
        days.update([day for day in held if day >= since][-EVALUATION_DAYS:])
    history = pl.concat(frames) if frames else pl.DataFrame(schema=MODEL_PERFORMANCE)
    return history, sorted(days)


@dg.asset(
    deps=["model_versions", "model_performance", "subscriptions"],
    group_name="marketplace",
    kinds={"polars", "parquet"},
    description="Every model's listing status (listed, pending_review, rejected, suspended, private, "
    "archived), since when and why: paid models wait for review; a listed model is suspended after "
    "three consecutive failing daily evaluations. Appends subscribers' notifications (new versions, "
    "suspensions) and followers' (a followed creator's newly listed model) to the notifications outbox.",
)
def model_status(
    context: dg.AssetExecutionContext, config: SportsConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    now = dt.datetime.now(dt.UTC)
    versions = read_model_versions(lake)
    latest = latest_versions(versions)
    reviews = ReviewStore(lake).table()
    previous = read_table(lake, MODEL_STATUS_KEY, MODEL_STATUS)
    held = sticky_suspensions(previous, latest)
    listed = listing_status(latest, reviews, held).filter(pl.col("status") == "listed")["model_id"]
    history, days = performance_history(lake, config.sports)
    found = suspensions(history, versions.filter(pl.col("model_id").is_in(listed.implode())), days)
    table = status_table(listing_status(latest, reviews, pl.concat([held, found])), previous, now)
    sent = pl.concat(
        [
            notifications(previous, table, read_table(lake, SUBSCRIPTIONS_KEY, SUBSCRIPTIONS), now),
            new_public_model_notifications(previous, table, read_table(lake, FOLLOWS_KEY, FOLLOWS), now),
        ]
    )
    # The audit log and the outbox first: a crash before the status is written re-sends (deduplicated
    # by id and business key) instead of losing notifications or records.
    for record in status_audit_records(previous, table):
        audit.append(lake, record)
    lake.write_parquet(
        NOTIFICATIONS_KEY, append_notifications(read_table(lake, NOTIFICATIONS_KEY, NOTIFICATIONS), sent)
    )
    lake.write_parquet(MODEL_STATUS_KEY, table)
    counts = dict(table.group_by("status").len().iter_rows())
    context.log.info("statuses %s; %d new suspensions; %d notifications", counts, found.height, sent.height)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            **{f"status/{s}": int(counts.get(s, 0)) for s in ("listed", "pending_review", "suspended")},
            "evaluated_days": ", ".join(d.isoformat() for d in days) or "none",
            "new_suspensions": found.height,
            "notifications_sent": sent.height,
            "unlisted": dg.MetadataValue.md(
                markdown_table(
                    table.filter(pl.col("status").is_in(["pending_review", "rejected", "suspended"])).select(
                        "model_id", "version", "status", "since", "reason"
                    ),
                    rows=10,
                )
            ),
        }
    )


class UserReviewsConfig(dg.Config):
    keys: list[str] = Field(default_factory=list)
    """Review objects that changed: their reviews are read again whole and replace their rows;
    empty rebuilds the table from every object in the inbox."""


@dg.asset(
    group_name="marketplace",
    kinds={"polars", "parquet"},
    description="Users' reviews of models (SPEC 6), one row per review as it stands: stars, text, "
    "edits kept, helpful votes, the creator's reply, pending reports and visibility (visible, "
    "reported until an operator decides, hidden). The model_ratings mart averages the visible ones.",
)
def user_reviews(
    context: dg.AssetExecutionContext, config: UserReviewsConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    store = RatingStore(lake)
    if config.keys:
        fresh = review_rows(store.read(config.keys))
        table = replace_reviews(read_table(lake, USER_REVIEWS_KEY, USER_REVIEWS), fresh)
    else:
        fresh = table = review_rows(store.every())
    lake.write_parquet(USER_REVIEWS_KEY, table)
    context.log.info("folded %d reviews into %d rows", fresh.height, table.height)
    counts = dict(table.group_by("visibility").len().iter_rows())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "mode": "incremental" if config.keys else "full rebuild",
            "reviews_read": fresh.height,
            **{f"visibility/{v}": int(counts.get(v, 0)) for v in ("visible", "reported", "hidden")},
            "preview": dg.MetadataValue.md(
                markdown_table(
                    table.select("model_id", "review_id", "stars", "helpful", "visibility"), rows=10
                )
            ),
        }
    )


marketplace_assets = [subscriptions, model_status, user_reviews]
