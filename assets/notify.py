"""Follows and delivered notifications (issue 16).

- ``follows`` folds follow and unfollow events (``inbox/follows/``, written by the API) into the
  ``follows`` table; its inbox sensor passes the new keys.
- ``pick_digests`` makes, for a game date near the run's clock, one notification per subscriber
  listing the day's new qualifying picks of the models they subscribe to
  (``tables/pick_digests/{day}``); a re-run adds digests only for users who had none that day.
- ``notification_deliveries`` sends what is due of the outbox and the digests to every user's webhook
  endpoints and email (``services/notify.py``); the delivery sensor (``pipelines/deliveries.py``) asks
  for it while anything is due.

No ``from __future__ import annotations`` here: Dagster reads the ``config`` annotation unevaluated.
"""

import datetime as dt

import dagster as dg
import polars as pl
from pydantic import Field

from assets.analyses import read_model_versions
from assets.common import SportsConfig, daily_partitions, markdown_table, partition_days
from assets.marketplace import FOLLOWS_KEY, SUBSCRIPTIONS_KEY, read_table
from domain.marketplace.listing import NOTIFICATIONS, latest_versions, subscribers_with_access
from domain.marketplace.notify import FOLLOWS, fold_follows, pick_digests
from domain.models.engine import ANALYSES
from domain.money.subscriptions import SUBSCRIPTIONS
from services.mail import Mailer
from services.notify import WebhookSender, deliver
from stores.follows import FollowStore
from stores.lake import Lake
from stores.layout import pick_digests_key


class FollowsConfig(dg.Config):
    keys: list[str] = Field(default_factory=list)
    """Follow events to fold into the table; empty rebuilds it from every event."""


@dg.asset(
    group_name="notifications",
    kinds={"polars", "parquet"},
    description="Who follows which creator: the latest follow or unfollow of every (user, creator) pair.",
)
def follows(
    context: dg.AssetExecutionContext, config: FollowsConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    store = FollowStore(lake)
    previous = read_table(lake, FOLLOWS_KEY, FOLLOWS) if config.keys else None
    keys = config.keys or [k for k, _ in store.objects()]
    table = fold_follows(previous, store.load(keys))
    lake.write_parquet(FOLLOWS_KEY, table)
    context.log.info("folded %d follow events", len(keys))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "mode": "incremental" if config.keys else "full rebuild",
            "following": table.filter("following").height,
        }
    )


@dg.asset(
    name="pick_digests",
    deps=["analyses", "subscriptions", "model_versions"],
    group_name="notifications",
    kinds={"polars", "parquet"},
    description="One notification per subscriber and game date listing the day's new qualifying picks "
    "of the models they subscribe to (only for dates within a day of the run's clock, so backfills "
    "notify nobody).",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def pick_digests_asset(
    context: dg.AssetExecutionContext, config: SportsConfig, lake: dg.ResourceParam[Lake]
) -> dg.MaterializeResult:
    now = dt.datetime.now(dt.UTC)
    _, _, days = partition_days(context)
    subscribers = subscribers_with_access(read_table(lake, SUBSCRIPTIONS_KEY, SUBSCRIPTIONS), now)
    names = latest_versions(read_model_versions(lake)).select("model_id", "name")
    made = 0
    for day in days:
        key = pick_digests_key(day)
        before = read_table(lake, key, NOTIFICATIONS)
        picks = pl.concat(
            [lake.read_table("analyses", s, day, day + dt.timedelta(days=1), ANALYSES) for s in config.sports]
        ).filter("qualifies")
        new = pick_digests(picks.join(names, on="model_id"), subscribers, day, before["user_id"], now)
        if new.height:
            lake.write_parquet(key, pl.concat([before, new]))
            made += new.height
    return dg.MaterializeResult(metadata={"digests": made, "days": len(days)})


@dg.asset(
    deps=["model_status", "pick_digests"],
    group_name="notifications",
    kinds={"python"},
    description="Delivers the notifications due now to users' webhook endpoints (signed, retried with "
    "backoff for 24 h, then dead-lettered) and email, once per channel.",
)
def notification_deliveries(
    context: dg.AssetExecutionContext,
    lake: dg.ResourceParam[Lake],
    webhooks: dg.ResourceParam[WebhookSender],
    mailer: dg.ResourceParam[Mailer | None],
) -> dg.MaterializeResult:
    report = deliver(lake, dt.datetime.now(dt.UTC), webhooks, mailer)
    context.log.info(
        "%d delivered, %d failed, %d dead-lettered", report.delivered, report.failed, report.dead_lettered
    )
    sent = pl.DataFrame(report.sent, schema=["notification_id", "channel"], orient="row")
    return dg.MaterializeResult(
        metadata={
            "delivered": report.delivered,
            "failed": report.failed,
            "dead_lettered": report.dead_lettered,
            "sent": dg.MetadataValue.md(markdown_table(sent, rows=10)),
        }
    )


notify_assets = [follows, pick_digests_asset, notification_deliveries]
