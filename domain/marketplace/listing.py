"""The marketplace's rules (SPEC 6): listing status, suspensions, notifications, subscriptions,
popular models, the on-demand cache and the run limit. Pure: frames and plain values in, frames out.

A model's *listing status* is one of

- ``archived``: its owner deleted it;
- ``private``: its latest version is not shared;
- ``suspended``: the marketplace pulled its latest version for poor performance (three consecutive
  failing evaluations, :func:`domain.marketplace.performance.suspension_decisions`); a new version
  lifts it (and must pass the publishing rule again);
- ``pending_review`` / ``rejected``: a paid model waiting for, or refused by, an operator. An approval
  covers later versions at the approved price; a rejection names one version, so a newer version is a
  resubmission and waits again;
- ``listed``: shown in the marketplace and open to new subscribers.

The pipeline (``model_status`` asset) and the API (a single model, read-your-writes) call the same
:func:`listing_status`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import polars as pl

from domain.compliance.audit import AuditRecord
from domain.marketplace.performance import suspension_decisions
from domain.models.engine.backtest import KEYS
from domain.models.registry import MODEL_VERSIONS
from domain.money.subscriptions import SUBSCRIPTIONS, subscription_states, with_access
from domain.tables.schemas import UTC_TS, conform

ListingStatus = Literal["listed", "pending_review", "rejected", "suspended", "private", "archived"]
Decision = Literal["approve", "reject"]

POPULAR_ABOVE = 10
"""The seed's hybrid execution: shared models with more than this many subscribers run on schedule."""
CACHE_SECONDS = 3600
"""On-demand results are reused for an hour per model version and slate (seed "Cached")."""

REVIEWS: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "price_cents": pl.Int64(),
    "decision": pl.String(),
    "reason": pl.String(),
    "reviewer": pl.String(),
    "decided_at": UTC_TS,
}
"""An operator's decision on one version of a paid model, at the price it had then."""

SUSPENSIONS: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "evaluated_on": pl.Date(),
    "reason": pl.String(),
}
"""The first evaluation that suspended a model version, with the rule's reason."""

MODEL_STATUS: dict[str, pl.DataType] = {
    "model_id": pl.String(),
    "version": pl.Int32(),
    "owner_user_id": pl.String(),
    "name": pl.String(),
    "sport": pl.String(),
    "bet_type": pl.String(),
    "market": pl.String(),
    "price_cents": pl.Int64(),
    "status": pl.String(),
    "since": UTC_TS,
    "reason": pl.String(),
}
"""One row per model: its latest version's listing status, since when, and why."""

NOTIFICATIONS: dict[str, pl.DataType] = {
    "notification_id": pl.String(),
    "user_id": pl.String(),
    "model_id": pl.String(),
    "version": pl.Int32(),
    "kind": pl.String(),
    "message": pl.String(),
    "created_at": UTC_TS,
}
"""The outbox a mailer or frontend reads: append-only, one row per (kind, model version, user), so
re-running the asset never notifies twice."""

FREE_PREFIX = "free:"
"""Subscription ids of free subscriptions (``free:{user_id}:{model_id}``); Stripe's start ``sub_``."""


# ---- listing ------------------------------------------------------------------------------------


def latest_versions(model_versions: pl.DataFrame) -> pl.DataFrame:
    """Every model's latest version row (:data:`MODEL_VERSIONS`)."""
    return (
        conform(model_versions, MODEL_VERSIONS).sort("version").group_by("model_id").last().sort("model_id")
    )


def listing_status(latest: pl.DataFrame, reviews: pl.DataFrame, suspended: pl.DataFrame) -> pl.DataFrame:
    """The :data:`MODEL_STATUS` columns (``since`` null) of each model in ``latest``.

    ``latest`` holds one :data:`MODEL_VERSIONS` row per model (its latest version), ``reviews`` the
    operators' decisions (:data:`REVIEWS`), ``suspended`` the suspended model versions
    (:data:`SUSPENSIONS`; a suspension of an older version no longer applies).
    """
    last_review = (
        conform(reviews, REVIEWS)
        .sort("version", "decided_at")
        .group_by("model_id")
        .last()
        .select(
            "model_id",
            pl.col("version").alias("_reviewed"),
            pl.col("price_cents").alias("_reviewed_price"),
            "decision",
            pl.col("reason").alias("_review_reason"),
        )
    )
    suspensions = conform(suspended, SUSPENSIONS).unique(KEYS).select(*KEYS, pl.col("reason").alias("_why"))
    rows = (
        conform(latest, MODEL_VERSIONS)
        .join(last_review, on="model_id", how="left")
        .join(suspensions, on=KEYS, how="left")
    )
    paid = pl.col("price_cents") > 0
    approved = (pl.col("decision") == "approve") & (pl.col("_reviewed_price") == pl.col("price_cents"))
    rejected = (pl.col("decision") == "reject") & (pl.col("_reviewed") == pl.col("version"))
    status = (
        pl.when(pl.col("status") == "archived")
        .then(pl.lit("archived"))
        .when(~pl.col("public"))
        .then(pl.lit("private"))
        .when(pl.col("_why").is_not_null())
        .then(pl.lit("suspended"))
        .when(~paid | approved)
        .then(pl.lit("listed"))
        .when(rejected)
        .then(pl.lit("rejected"))
        .otherwise(pl.lit("pending_review"))
    )
    price_changed = (pl.col("decision") == "approve") & ~approved
    reason = (
        pl.when(status == "archived")
        .then(pl.lit("archived by its owner"))
        .when(status == "private")
        .then(pl.lit("the latest version is not shared"))
        .when(status == "suspended")
        .then(pl.col("_why"))
        .when((status == "listed") & paid)
        .then(pl.format("approved by an operator (version {})", pl.col("_reviewed")))
        .when(status == "listed")
        .then(pl.lit("free and public"))
        .when(status == "rejected")
        .then(pl.format("rejected by an operator: {}", pl.col("_review_reason")))
        .when(price_changed)
        .then(pl.lit("the price changed since the operator's approval; paid models wait for review"))
        .otherwise(pl.lit("paid models wait for an operator's review before they are listed"))
    )
    return conform(rows.with_columns(status.alias("status"), reason.alias("reason")), MODEL_STATUS)


def sticky_suspensions(previous: pl.DataFrame, latest: pl.DataFrame) -> pl.DataFrame:
    """The suspensions in a previous status table that still hold: same model, same latest version."""
    held = conform(previous, MODEL_STATUS).filter(pl.col("status") == "suspended").select(*KEYS, "reason")
    kept = held.join(conform(latest, MODEL_VERSIONS).select(KEYS), on=KEYS)
    return conform(kept.with_columns(pl.lit(None, pl.Date).alias("evaluated_on")), SUSPENSIONS)


def suspensions(history: pl.DataFrame, model_versions: pl.DataFrame, days: Iterable[dt.date]) -> pl.DataFrame:
    """:data:`SUSPENSIONS`: the model versions that :func:`suspension_decisions` suspends on any of
    ``days`` (their daily evaluations, in order), each with the first such day and its reason."""
    found = [
        suspension_decisions(history, model_versions, day)
        .filter(pl.col("suspend"))
        .with_columns(
            pl.lit(day).alias("evaluated_on"),
            pl.format("{} (evaluation of {})", "reason", pl.lit(day.isoformat())).alias("reason"),
        )
        for day in sorted(set(days))
    ]
    frames = [conform(f, SUSPENSIONS) for f in found if f.height]
    if not frames:
        return pl.DataFrame(schema=SUSPENSIONS)
    return pl.concat(frames).sort("evaluated_on").unique(KEYS, keep="first", maintain_order=True)


def status_table(listing: pl.DataFrame, previous: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """:data:`MODEL_STATUS` with ``since``: kept from ``previous`` while a model's status is unchanged,
    ``now`` when it changed (or the model is new)."""
    before = conform(previous, MODEL_STATUS).select("model_id", pl.col("status").alias("_was"), "since")
    return conform(
        conform(listing, MODEL_STATUS)
        .drop("since")
        .join(before, on="model_id", how="left")
        .with_columns(
            pl.when(pl.col("_was") == pl.col("status"))
            .then(pl.col("since"))
            .otherwise(pl.lit(now).cast(UTC_TS))
            .alias("since")
        ),
        MODEL_STATUS,
    ).sort("model_id")


# ---- notifications ------------------------------------------------------------------------------


def subscribers_with_access(subscriptions: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """``(model_id, user_id)`` of every subscription that gives access at ``now``
    (:func:`domain.money.subscriptions.access`)."""
    return (
        with_access(conform(subscriptions, SUBSCRIPTIONS), now)
        .filter(pl.col("user_id").is_not_null())
        .select("model_id", "user_id")
        .unique()
    )


def _compared(previous: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """``current`` status rows with the previous ``_was`` status and ``_was_version`` of each model."""
    before = conform(previous, MODEL_STATUS).select(
        "model_id", pl.col("version").alias("_was_version"), pl.col("status").alias("_was")
    )
    return conform(current, MODEL_STATUS).join(before, on="model_id", how="left")


def _newly(status: str) -> pl.Expr:
    """Rows of :func:`_compared` that entered ``status``; a suspension sticks to its version, so a
    newer version suspended again is a new suspension."""
    entered = pl.col("_was").is_null() | (pl.col("_was") != status)
    if status == "suspended":
        entered = entered | (pl.col("_was_version") != pl.col("version"))
    return (pl.col("status") == status) & entered


PAID_ENDED = " Paid subscriptions are cancelled now and the unused days of the period refunded."
"""Added to the notice of a paid model's suspension or archive (SPEC 6, fair cancellation)."""


def notifications(
    previous: pl.DataFrame, current: pl.DataFrame, subscriptions: pl.DataFrame, now: dt.datetime
) -> pl.DataFrame:
    """:data:`NOTIFICATIONS` for what changed between two status tables, one per subscriber with
    access: a new version of a shared model (not on the first run, which has nothing to compare
    with), a suspension and an archive (for a paid model, saying that subscriptions end and the
    unused days are refunded)."""
    rows = _compared(previous, current)
    shared = ~pl.col("status").is_in(["private", "archived"])
    new_version = (pl.col("version") > pl.col("_was_version")).fill_null(False) & shared
    name = pl.col("name")
    paid = pl.when(pl.col("price_cents") > 0).then(pl.lit(PAID_ENDED)).otherwise(pl.lit(""))
    events = pl.concat(
        [
            rows.filter(new_version).select(
                *KEYS,
                pl.lit("new_version").alias("kind"),
                pl.format("{} has a new version (v{})", name, pl.col("version")).alias("message"),
            ),
            rows.filter(_newly("suspended")).select(
                *KEYS,
                pl.lit("suspended").alias("kind"),
                pl.format(
                    "{} was suspended from the marketplace: {}. Its analyses stop until its creator "
                    "publishes a new version.{}",
                    name,
                    pl.col("reason"),
                    paid,
                ).alias("message"),
            ),
            rows.filter(_newly("archived") & pl.col("_was").is_not_null()).select(
                *KEYS,
                pl.lit("archived").alias("kind"),
                pl.format("{} was archived by its creator; its analyses stop.{}", name, paid).alias(
                    "message"
                ),
            ),
        ]
    )
    out = events.join(subscribers_with_access(subscriptions, now), on="model_id").with_columns(
        pl.format("{}:{}:v{}:{}", "kind", "model_id", "version", "user_id").alias("notification_id"),
        pl.lit(now).cast(UTC_TS).alias("created_at"),
    )
    return conform(out, NOTIFICATIONS).sort("notification_id")


def status_audit_records(previous: pl.DataFrame, current: pl.DataFrame) -> list[AuditRecord]:
    """One audit record per model that entered ``suspended`` (per version: the pipeline suspended
    it) or ``archived`` (its owner did) between two status tables, at the status's ``since``."""
    rows = _compared(previous, current).filter(_newly("suspended") | _newly("archived"))
    return [
        AuditRecord(
            business_key=f"model.{r['status']}:{r['model_id']}"
            + (f":v{r['version']}" if r["status"] == "suspended" else ""),
            acted_at=r["since"],
            actor="pipeline" if r["status"] == "suspended" else r["owner_user_id"],
            action=f"model.{r['status']}",
            object_type="model",
            object_id=r["model_id"],
            before=None if r["_was"] is None else {"status": r["_was"], "version": r["_was_version"]},
            after={"status": r["status"], "version": r["version"], "reason": r["reason"]},
        )
        for r in rows.iter_rows(named=True)
    ]


def append_notifications(existing: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """The outbox with ``new`` appended; a notification already in it (same id) is kept as it was."""
    both = pl.concat([conform(existing, NOTIFICATIONS), conform(new, NOTIFICATIONS)])
    return both.unique("notification_id", keep="first", maintain_order=True)


# ---- subscriptions ------------------------------------------------------------------------------


def free_subscription_id(user_id: str, model_id: str) -> str:
    return f"{FREE_PREFIX}{user_id}:{model_id}"


def free_subscription_row(event: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A free subscribe or unsubscribe event (stored at ``key``) as a :data:`SUBSCRIPTIONS` row: the
    subscription's state after it. Keys of one user and model sort in event order."""
    active = event["action"] == "subscribe"
    return {
        "subscription_id": free_subscription_id(event["user_id"], event["model_id"]),
        "user_id": event["user_id"],
        "model_id": event["model_id"],
        "creator_id": event["creator_id"],
        "price_cents": 0,
        "status": "active" if active else "cancelled",
        "start_date": dt.datetime.fromisoformat(event["started_at"]),
        "cancel_at_period_end": False,
        "terminal": False,
        "event_created": dt.datetime.fromisoformat(event["at"]),
        "event_rank": 1,
        "event_id": key,
    }


def fold_subscriptions(
    previous: pl.DataFrame | None,
    free_events: Sequence[tuple[str, Mapping[str, Any]]],
    stripe_events: Iterable[Mapping[str, Any]],
) -> pl.DataFrame:
    """The ``subscriptions`` table: ``previous`` (None for a full rebuild) updated with free
    subscription events (``(key, event)``; the greatest key per subscription wins) and Stripe events
    (folded by :func:`domain.money.subscriptions.subscription_states`). Folding the same events again gives
    the same table."""
    before = pl.DataFrame(schema=SUBSCRIPTIONS) if previous is None else conform(previous, SUBSCRIPTIONS)
    is_free = pl.col("subscription_id").str.starts_with(FREE_PREFIX)
    new_free = pl.DataFrame([free_subscription_row(e, k) for k, e in free_events], schema=SUBSCRIPTIONS)
    free = (
        pl.concat([before.filter(is_free), new_free])
        .sort("event_id")
        .group_by("subscription_id", maintain_order=True)
        .last()
    )
    paid_before = before.filter(~is_free)
    paid = subscription_states(stripe_events, paid_before if paid_before.height else None)
    return pl.concat([conform(paid, SUBSCRIPTIONS), conform(free, SUBSCRIPTIONS)]).sort("subscription_id")


def popular_models(
    subscriptions: pl.DataFrame, model_status: pl.DataFrame, now: dt.datetime, above: int = POPULAR_ABOVE
) -> list[str]:
    """Listed models with more than ``above`` subscribers with access at ``now``: the scheduled ones."""
    counts = subscribers_with_access(subscriptions, now).group_by("model_id").agg(pl.len().alias("n"))
    listed = conform(model_status, MODEL_STATUS).filter(pl.col("status") == "listed").select("model_id")
    return sorted(counts.filter(pl.col("n") > above).join(listed, on="model_id")["model_id"].to_list())


# ---- on-demand execution ------------------------------------------------------------------------


def cache_fresh(computed_at: dt.datetime, now: dt.datetime, seconds: float = CACHE_SECONDS) -> bool:
    """Whether a result computed at ``computed_at`` may still be served at ``now``."""
    return computed_at <= now < computed_at + dt.timedelta(seconds=seconds)


def retry_after(
    runs: Iterable[dt.datetime], now: dt.datetime, limit: int, window: dt.timedelta
) -> float | None:
    """None if one more run may start at ``now`` given the earlier ``runs`` (at most ``limit`` in any
    ``window``), else the seconds until the oldest run in the window leaves it."""
    recent = sorted(t for t in runs if now - window < t <= now)
    if len(recent) < limit:
        return None
    return (recent[len(recent) - limit] + window - now).total_seconds()
