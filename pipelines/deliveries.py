"""The delivery sensor: every 30 seconds, a run of ``notification_deliveries`` when a notification
is due on some channel (a new one, or a retry whose backoff ended).

It counts what is due with the run's own planner (``services.notify.deliver``, dry run), so it asks
for nothing while every delivery waits. Like the inbox sensors it asks for no run while one is
unfinished, and a STARTED run silent for :data:`SILENT_RUN_SECONDS` lost its process (killed): the
tick marks it failed and carries on. The attempts that run recorded without a result are retried once
their lease ends (``domain.marketplace.notify.ATTEMPT_LEASE``), under the same idempotency keys.

No ``from __future__ import annotations`` here: Dagster reads resource annotations unevaluated.
"""

import datetime as dt

import dagster as dg

from assets.notify import notification_deliveries
from pipelines.sensors import Inbox
from services.mail import Mailer
from services.notify import WebhookSender, deliver
from stores import layout
from stores.lake import Lake

SILENT_RUN_SECONDS = 900.0
"""A delivery run sends at most a few requests a second for minutes; one silent this long is dead."""
INTERVAL_SECONDS = 30

DELIVERIES = Inbox(
    sensor_name="notification_delivery_sensor",
    name="deliveries",
    objects=lambda lake: lake.list_objects(layout.DELIVERIES_INBOX),
    target=dg.AssetSelection.assets(notification_deliveries),
    description="Delivers due notifications (new ones, retries whose backoff ended) to webhooks and email.",
    previous_run="delivery run",
    new_objects="deliveries due",
    minimum_interval_seconds=INTERVAL_SECONDS,
    silent_run_seconds=SILENT_RUN_SECONDS,
)
"""The unfinished-run check and tags of the inbox sensors; what is due comes from the planner."""


@dg.sensor(
    name=DELIVERIES.sensor_name,
    target=DELIVERIES.target,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=DELIVERIES.description,
)
def notification_delivery_sensor(
    context: dg.SensorEvaluationContext,
    lake: dg.ResourceParam[Lake],
    webhooks: dg.ResourceParam[WebhookSender],
    mailer: dg.ResourceParam[Mailer | None],
) -> dg.RunRequest | dg.SkipReason:
    if DELIVERIES.running(context.instance):
        return dg.SkipReason(f"the previous {DELIVERIES.previous_run} has not finished")
    now = dt.datetime.now(dt.UTC)
    due = deliver(lake, now, webhooks, mailer, dry_run=True).due
    if not due:
        return dg.SkipReason(f"no {DELIVERIES.new_objects}")
    return dg.RunRequest(
        run_key=f"deliveries-{int(now.timestamp()) // INTERVAL_SECONDS}",
        tags=DELIVERIES.tags | {"oddsforge/due": str(due)},
    )
