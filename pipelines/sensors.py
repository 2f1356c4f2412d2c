"""The inbox sensors: the API writes immutable objects under ``inbox/``, and one sensor per inbox asks
for a run of the assets that fold the new objects into tables.

Each sensor is made by :func:`inbox_sensor` from an :class:`Inbox` declaration, so they all behave
alike:

- a settle-window cursor (:func:`new_inbox_objects`): each object is processed once, even when a slow
  write becomes visible after a quicker, later one;
- a run key digested from the new keys and the cursor: a restarted tick never asks twice;
- no run while the previous one of the same inbox is unfinished: a run reads, then rewrites its
  table, and two at once would lose one's rows; the tick after it ends takes everything that arrived.
  A run whose process was killed stays STARTED (the local run launcher cannot tell a dead run worker,
  so run monitoring never fails it): a STARTED run that has logged nothing for
  :data:`SILENT_RUN_SECONDS` is marked failed by the tick, which raises its alert, and no longer
  blocks the inbox;
- they start RUNNING: the API's writes wait for them (a dataset answers ``processing``, a model
  version, a subscription, a review, a payment or an audit record reaches the tables only through
  them), so a fresh deployment must not wait for an operator to switch them on.

Adding an inbox: a lister of its ``(key, modification time)`` objects in ``stores/``, an asset that
merges the keys it is given (and rebuilds from every object when given none), one declaration here.

No ``from __future__ import annotations`` here: Dagster reads resource annotations unevaluated.
"""

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import dagster as dg

from assets.compliance import audit
from assets.datasets import datasets
from assets.marketplace import model_status, subscriptions, user_reviews
from assets.models import model_versions
from assets.notify import follows
from assets.payments import creator_balances, ledger
from stores import layout
from stores.audit import audit_objects
from stores.datasets import DatasetStore
from stores.follows import FollowStore
from stores.lake import Lake
from stores.ledger import ledger_sources
from stores.ratings import RatingStore

SETTLE_SECONDS = 60.0
"""How far back a sensor re-checks modification times. An object's time is when its write started
(S3 ``LastModified``, the temp file's mtime locally), so a slow write can become visible after a
quicker, later one; keys seen inside this window are kept in the cursor instead of trusting the
newest time alone."""
MAX_KEYS_PER_RUN = 5_000
"""Above this many new objects (a first deployment over a full inbox), a tick asks for a full
rebuild instead of passing every key in the run config."""
INBOX_TAG = "oddsforge/inbox"
"""Run tag naming the inbox a run folds, so a tick (or the CLI) can see that one is still going."""
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
"""Run statuses of a run that may still write its table."""
SILENT_RUN_SECONDS = 3600.0
"""How long a STARTED inbox run may go without an event (a step starting or ending, a log line)
before it counts as dead. An inbox run's steps fold at most MAX_KEYS_PER_RUN objects and take
minutes, so a live one is not this quiet; a killed one would otherwise block its inbox for ever."""

InboxObjects = Callable[[Lake], Iterable[tuple[str, float]]]


@dataclass(frozen=True)
class Inbox:
    """What one inbox sensor watches, what it asks for, and how it says so."""

    sensor_name: str
    name: str
    """The run tag's value and the run keys' prefix."""
    objects: InboxObjects
    """``(key, modification time)`` of every object the sensor watches."""
    target: dg.AssetSelection
    description: str
    previous_run: str
    """What the skip reason calls an unfinished run: "the previous {previous_run} has not finished"."""
    new_objects: str
    """What the skip reason calls the objects: "no new {new_objects}"."""
    keys_into: dg.AssetsDefinition | None = None
    """The asset whose ``keys`` config takes the new keys (none: a full rebuild); None when the run
    finds what is new by itself."""
    max_keys_per_run: int = MAX_KEYS_PER_RUN
    minimum_interval_seconds: int = 30
    silent_run_seconds: float = SILENT_RUN_SECONDS

    @property
    def tags(self) -> dict[str, str]:
        return {INBOX_TAG: self.name}

    def running(self, instance: dg.DagsterInstance) -> bool:
        """Whether a run of this inbox (the sensor's or one tagged alike) is unfinished. A STARTED one
        silent for ``silent_run_seconds`` lost its process: it is marked failed instead."""
        now = time.time()
        for record in instance.get_run_records(dg.RunsFilter(tags=self.tags, statuses=UNFINISHED)):
            run = record.dagster_run
            silent = now - last_heard(instance, record)
            if run.status != dg.DagsterRunStatus.STARTED or silent < self.silent_run_seconds:
                return True
            instance.report_run_failed(
                run,
                f"no event for {silent:.0f} s: the run's process is gone (killed?); marked failed by "
                f"the {self.sensor_name} so that new objects are processed",
            )
        return False

    def run_config(self, keys: list[str]) -> dict:
        """The run's config: the new keys, or none (a full rebuild) above ``max_keys_per_run``."""
        if self.keys_into is None:
            return {}
        run_keys = keys if len(keys) <= self.max_keys_per_run else []
        return {"ops": {self.keys_into.op.name: {"config": {"keys": run_keys}}}}


def last_heard(instance: dg.DagsterInstance, record: dg.RunRecord) -> float:
    """When a run last gave a sign of life (POSIX seconds): its latest event, else its start; a
    run with neither is taken as just heard of."""
    latest = instance.get_records_for_run(record.dagster_run.run_id, limit=1, ascending=False).records
    if latest:
        return latest[0].event_log_entry.timestamp
    return record.start_time if record.start_time is not None else time.time()


def new_inbox_objects(
    objects: Iterable[tuple[str, float]], cursor: str | None
) -> tuple[list[str], str | None]:
    """The keys among ``objects`` (key, modification time) not processed yet, and the next cursor.

    The cursor is JSON ``{"mtime": newest time processed, "keys": [keys whose time lies within
    SETTLE_SECONDS of it]}``: an object older than that window was processed, one inside it is new
    unless listed, so nothing is missed or repeated. With nothing new the cursor stays as it is.
    """
    listed = list(objects)
    if cursor is None:
        new, watermark = listed, float("-inf")
    else:
        state = json.loads(cursor)
        seen, watermark = set(state["keys"]), state["mtime"]
        new = [(k, m) for k, m in listed if m >= watermark - SETTLE_SECONDS and k not in seen]
    if not new:
        return [], cursor
    newest = max(watermark, *(m for _, m in new))
    window = sorted(k for k, m in listed if m >= newest - SETTLE_SECONDS)
    return sorted(k for k, _ in new), json.dumps({"mtime": newest, "keys": window})


def inbox_tick(
    inbox: Inbox, context: dg.SensorEvaluationContext, lake: Lake
) -> dg.SensorResult | dg.SkipReason:
    """One run for the new objects of ``inbox``, or why there is none."""
    if inbox.running(context.instance):
        return dg.SkipReason(f"the previous {inbox.previous_run} has not finished")
    keys, cursor = new_inbox_objects(inbox.objects(lake), context.cursor)
    if not keys:
        return dg.SkipReason(f"no new {inbox.new_objects}")
    digest = hashlib.sha256("\n".join([*keys, str(cursor)]).encode()).hexdigest()
    request = dg.RunRequest(
        run_key=f"{inbox.name}-{digest[:32]}",
        run_config=inbox.run_config(keys),
        tags=inbox.tags | {"oddsforge/new_objects": str(len(keys))},
    )
    return dg.SensorResult(run_requests=[request], cursor=cursor)


def inbox_sensor(inbox: Inbox) -> dg.SensorDefinition:
    """The sensor of ``inbox``, started RUNNING (see the module docstring)."""

    @dg.sensor(
        name=inbox.sensor_name,
        target=inbox.target,
        minimum_interval_seconds=inbox.minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=inbox.description,
    )
    def _sensor(
        context: dg.SensorEvaluationContext, lake: dg.ResourceParam[Lake]
    ) -> dg.SensorResult | dg.SkipReason:
        return inbox_tick(inbox, context, lake)

    return _sensor


def subscription_objects(lake: Lake) -> Iterator[tuple[str, float]]:
    """Free subscription events and Stripe events: the ``subscriptions`` table folds both."""
    for key, mtime in lake.list_objects(layout.SUBSCRIPTIONS_INBOX):
        if layout.parse_subscription_key(key) is not None:
            yield key, mtime
    for key, mtime in lake.list_objects(layout.STRIPE_EVENTS_INBOX):
        if key.endswith(".json"):
            yield key, mtime


MODEL_INBOX = Inbox(
    sensor_name="model_inbox_sensor",
    name="models",
    objects=lambda lake: lake.list_objects(layout.MODELS_INBOX),
    target=dg.AssetSelection.assets(model_versions),
    description="Merges new model versions and archive markers from the inbox into model_versions.",
    previous_run="model_versions merge",
    new_objects=f"objects under {layout.MODELS_INBOX}",
    keys_into=model_versions,
)
DATASET_INBOX = Inbox(
    sensor_name="dataset_inbox_sensor",
    name="datasets",
    objects=lambda lake: DatasetStore(lake).event_keys(),
    target=dg.AssetSelection.assets(datasets),
    description="Processes new dataset uploads, edits and deletions from the inbox into the datasets table.",
    previous_run="datasets run",
    new_objects="dataset uploads, edits or deletions",
    keys_into=datasets,
)
LEDGER_INBOX = Inbox(
    sensor_name="stripe_inbox_sensor",
    name="ledger",
    objects=ledger_sources,
    target=dg.AssetSelection.assets(ledger, creator_balances),
    description="Posts new verified Stripe events, recorded payout transfers and fair-cancellation "
    "refunds onto the ledger.",
    previous_run="ledger run",
    new_objects="Stripe events, payout transfers or refunds",
    # A ledger run posts whatever it has not posted yet: the keys only name the request.
)
SUBSCRIPTIONS_INBOX = Inbox(
    sensor_name="subscriptions_inbox_sensor",
    name="subscriptions",
    objects=subscription_objects,
    target=dg.AssetSelection.assets(subscriptions),
    description="Folds new free subscription events and Stripe events into the subscriptions table.",
    previous_run="subscriptions run",
    new_objects="subscriptions objects",
    keys_into=subscriptions,
)
REVIEW_INBOX = Inbox(
    sensor_name="review_inbox_sensor",
    name="reviews",
    objects=lambda lake: lake.list_objects(layout.REVIEWS_INBOX),
    target=dg.AssetSelection.assets(model_status),
    description="Re-evaluates listing statuses when an operator records a review of a paid model.",
    previous_run="reviews run",
    new_objects="reviews objects",
)
RATINGS_INBOX = Inbox(
    sensor_name="ratings_inbox_sensor",
    name="ratings",
    objects=lambda lake: RatingStore(lake).objects(),
    target=dg.AssetSelection.assets(user_reviews),
    description="Folds users' new reviews of models, their edits, replies, helpful votes, reports and "
    "operators' decisions into the user_reviews table.",
    previous_run="user_reviews run",
    new_objects="review objects",
    keys_into=user_reviews,
)
AUDIT_INBOX = Inbox(
    sensor_name="audit_inbox_sensor",
    name="audit",
    objects=audit_objects,
    target=dg.AssetSelection.assets(audit),
    description="Folds new audit records (operator and money actions) into the audit table.",
    previous_run="audit run",
    new_objects="audit records",
    keys_into=audit,
)
FOLLOWS_INBOX = Inbox(
    sensor_name="follows_inbox_sensor",
    name="follows",
    objects=lambda lake: FollowStore(lake).objects(),
    target=dg.AssetSelection.assets(follows),
    description="Folds new follow and unfollow events into the follows table.",
    previous_run="follows run",
    new_objects="follow events",
    keys_into=follows,
)

model_inbox_sensor = inbox_sensor(MODEL_INBOX)
dataset_inbox_sensor = inbox_sensor(DATASET_INBOX)
stripe_inbox_sensor = inbox_sensor(LEDGER_INBOX)
subscriptions_inbox_sensor = inbox_sensor(SUBSCRIPTIONS_INBOX)
review_inbox_sensor = inbox_sensor(REVIEW_INBOX)
ratings_inbox_sensor = inbox_sensor(RATINGS_INBOX)
audit_inbox_sensor = inbox_sensor(AUDIT_INBOX)
follows_inbox_sensor = inbox_sensor(FOLLOWS_INBOX)
inbox_sensors = [
    model_inbox_sensor,
    dataset_inbox_sensor,
    stripe_inbox_sensor,
    subscriptions_inbox_sensor,
    review_inbox_sensor,
    ratings_inbox_sensor,
    audit_inbox_sensor,
    follows_inbox_sensor,
]
