"""The lake's key layout: every object key and folder prefix is built and parsed here, nowhere else.

Keys are paths relative to the lake's root (a local folder or ``s3://bucket/prefix``); ``{n:06d}`` is
a version or sequence number, ``{day}`` an ISO date, ``{month}`` ``YYYY-MM``. What lives where, and
who writes it::

    raw/{table}/{sport}/{day}/{source}.parquet        one feed's or importer's rows   ingest, CLI import
    tables/{table}.parquet                            an unpartitioned table          pipeline
    tables/{table}/{sport}/{day}.parquet              a tidy daily partition          pipeline
    tables/{table}/{sport}/{month}.parquet            a month of it, compacted        import, compaction
    raw/{table}/{sport}/{month}/{source}.parquet      a month of one source's rows    import, compaction
    tables/ledger/{month}.parquet                     entries booked that month       ledger asset
    tables/payouts/{month}.parquet                    the month's payout records      payouts asset
    tables/audit/{month}.parquet                      audit records of that month     audit asset
    tables/dataset_rows/{dataset_id}/v{n:06d}.parquet a dataset version's typed rows  datasets asset
    tables/alerts/{alert_id}.json                     an operator alert               sensors, checks
    datasets/{dataset_id}/v{n:06d}/{name}             a version's report.json,        datasets asset
                                                      ge_result.json, data_docs.html
    inbox/                                            immutable objects, see below    API, CLI
        models/{user_id}/{model_id}/v{n:06d}.json     model version n                 API
        models/{user_id}/{model_id}/archived.json     the owner archived the model    API
        datasets/{user_id}/{dataset_id}/
            v{n:06d}/upload-{16 hex}.{ext}            version n's file, as sent       API
            v{n:06d}/meta.json                        version n exists (written last) API
            edits/{n:06d}.json                        the n-th name/description edit  API
            deleted.json                              the owner deleted the dataset   API
        subscriptions/{user_id}/{model_id}/{n:06d}.json   a free subscription's event n   API
        reviews/{model_id}/v{n:06d}.json              the decision on version n       ``oddsforge review``
        ratings/{model_id}/{review_id}/               a user's review (rating) of a model
            v{n:06d}.json                             its text n (1 posted, then edits)  API
            reply.json                                the creator's one reply          API
            helpful/{user_id}.json                    one user's helpful vote          API
            reports/{user_id}.json                    one user's report                API
            decisions/{n:06d}.json                    an operator's hide or restore n  CLI
        backtests/{model_id}/v{n:06d}/{from}_{to}.json    a backtest report           CLI, API
        backtests/{model_id}/drafts/{16 hex}/{from}_{to}.json  a draft's backtest     API
                                                      (the digest of the draft config)
        tuning/{model_id}/{job_id}.n{trials}.json     a tuning run's report           API
        jobs/{user_id}/{job_id}/                      a long backtest or tuning job   API
            request.json                              what to run (written first)     API
            attempt-{n:03d}.json                      worker n's claim                API worker
            progress-{n:03d}.json                     worker n's heartbeat and days   API worker
            result.json | failed.json                 how it ended                    API worker
        stripe/events/{event_id}.json                 a verified Stripe event         API webhook
        stripe/accounts/{creator_id}.json             a creator's Connect account     API (onboarding)
        stripe/account_states/{creator_id}/
            {created:010d}-{event_id}.json            its state from account.updated  API webhook
        stripe/prices/{model_id}/{price_cents}.json   a model's product and price     API
        stripe/customers/{user_id}.json               a user's Stripe customer        API
        stripe/subscriptions/{user_id}/{model_id}/
            {n:06d}.json                              paid checkout attempt n         API
            {n:06d}.session.json                      the Checkout Session for it     API
            {n:06d}.cancel.json                       the user's cancellation         API
        payouts/{month}/{creator_id}.json             a payout's intent               payouts asset
        payouts/{month}/attempts/{creator_id}.json    before Stripe is first called   payouts asset
        payouts/{month}/transfers/{creator_id}.json   the Transfer Stripe returned    payouts asset
        creator_terms/{user_id}/{version}.json        acceptance of creator terms     API
        cancellations/{subscription_id}/              a paid model's fair cancellation  cancellations asset
            cancel.json                               before Stripe is asked to cancel
            cancelled.json                            the subscription Stripe cancelled
            refunds/{invoice_id}.json                 a refund's amount, before Stripe is called
            refunded/{invoice_id}.json                the Refund Stripe returned (ledger posts it)
        audit/{record_id}.json                        one operator or money action    whoever acts
        self_exclusions/{user_id}/{day}-{period}.json a self-exclusion from that day  API
    commitments/                                      pick commitments (SPEC 9), each  runs that make picks
                                                      created once, never rewritten
        batches/{day}/{batch_id}.json                 a batch object {roots, chains, written_at}
        leaves/{day}/{batch_id}.json                  its leaves per model, with each pick's key
        chains/{model_id}/{n:08d}.json                a model's chain position n (claimed once)
        days/{day}.json                               the day's root over its batches' digests
        follows/{user_id}/{creator_id}/{n:06d}.json   a follow's event n              API
        webhooks/{user_id}/{endpoint_id}.json         a registered webhook endpoint   API
        webhooks/{user_id}/{endpoint_id}.deleted.json its removal                     API
        notification_preferences/{user_id}/{n:06d}.json   the user's n-th preferences API
        deliveries/{user_id}/{channel}/{key}/         one notification on one channel deliveries asset
            attempt-{n:03d}.json                      written before attempt n is sent
            result-{n:03d}.json                       its outcome
            dead.json                                 retries ended (dead letter)
    tables/pick_digests/{day}.parquet                 a day's digests of new picks    pick_digests asset
    cache/analyses/{model_id}/v{n:06d}/{day}.parquet  an on-demand run's analyses     API
    cache/ratelimits/analyze/{user_id}/{ms:013d}-{8 hex}  one uncached on-demand run  API
    idempotency/{user_id}/{sha256 of the key}/        one ``Idempotency-Key`` of a user's  API
        claim-{n:03d}.json                            attempt n's claim (the request's digest)
        answer.json                                   the first answer, replayed to retries

A month object replaces its month's day objects (of one table and sport, or one raw source): readers
keep a month object and ignore the days of its month (:func:`effective_keys`), so writing a month,
then deleting its days, never shows a row twice; a day written into a compacted month is merged into
the month object instead (``Lake.write_daily``).

``commitments/`` may sit under S3 Object Lock (``docs/operations.md``); ``{batch_id}`` is the batch's
write time and a token (:func:`batch_id`), so a day's batches list in the order they were written.
``inbox/`` objects are created once (create-if-absent), except review decisions, prices,
backtests and a job's progress, where the latest write counts; ``raw/``, ``tables/`` and
``datasets/`` are the pipeline's alone; ``cache/`` may be emptied at any time; ``idempotency/``
records expire after 24 hours.

The warehouse directory (a local disk: DuckDB files need one) has a layout of its own::

    serving/serving-{YYYYMMDDTHHMMSS}-{8 hex}.duckdb  an immutable serving snapshot   serving asset
    serving/CURRENT                                   the snapshot to serve           serving asset
    marts/marts-{YYYYMMDDTHHMMSS}-{8 hex}/marts.duckdb  one complete dbt build        marts asset
    marts/CURRENT                                     the build to read               marts asset
    analyst/analyst-{YYYYMMDDTHHMMSS}-{8 hex}.duckdb  a view per lake table + the marts  analyst asset
    analyst/CURRENT                                   the current analyst build       analyst asset
    analyst.duckdb                                    a hard link to it (open this)   analyst asset
    datasets/{dataset_id}/v{n:06d}.duckdb             a small version's typed rows    datasets asset
    jwt-secret                                        the development token secret    API, ``oddsforge token``
                                                      (mode 0600; ``stores/secrets.py``)

Files are written under a temporary name (:func:`temp_name`: a dot, the final name, a token,
``.tmp``) and renamed when complete, in the lake and the warehouse alike; readers skip such names and
housekeeping removes stale ones. Each marts build is a folder holding ``marts.duckdb``: dbt names a
DuckDB file's catalog after its stem and writes that name into its views, so the file keeps one name.

Owner-checked ids (model and dataset ids encode their owner) are refused by the builders when
malformed, and parsers return None for a key that is not of their kind, so a listing can be filtered
by parsing it. Everything here is a pure function of strings, dates and numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

RAW = "raw/"
TABLES = "tables/"
REPORTS = "datasets/"
INBOX = "inbox/"
CACHE = "cache/"
IDEMPOTENCY = "idempotency/"
COMMITMENTS = "commitments/"

MODELS_INBOX = f"{INBOX}models/"
DATASETS_INBOX = f"{INBOX}datasets/"
SUBSCRIPTIONS_INBOX = f"{INBOX}subscriptions/"
REVIEWS_INBOX = f"{INBOX}reviews/"
RATINGS_INBOX = f"{INBOX}ratings/"
BACKTESTS_INBOX = f"{INBOX}backtests/"
TUNING_INBOX = f"{INBOX}tuning/"
JOBS_INBOX = f"{INBOX}jobs/"
STRIPE_EVENTS_INBOX = f"{INBOX}stripe/events/"
STRIPE_ACCOUNTS_INBOX = f"{INBOX}stripe/accounts/"
STRIPE_ACCOUNT_STATES_INBOX = f"{INBOX}stripe/account_states/"
STRIPE_PRICES_INBOX = f"{INBOX}stripe/prices/"
STRIPE_CUSTOMERS_INBOX = f"{INBOX}stripe/customers/"
STRIPE_SUBSCRIPTIONS_INBOX = f"{INBOX}stripe/subscriptions/"
PAYOUTS_INBOX = f"{INBOX}payouts/"
CANCELLATIONS_INBOX = f"{INBOX}cancellations/"
AUDIT_INBOX = f"{INBOX}audit/"
CREATOR_TERMS_INBOX = f"{INBOX}creator_terms/"
SELF_EXCLUSIONS_INBOX = f"{INBOX}self_exclusions/"
FOLLOWS_INBOX = f"{INBOX}follows/"
WEBHOOKS_INBOX = f"{INBOX}webhooks/"
PREFERENCES_INBOX = f"{INBOX}notification_preferences/"
DELIVERIES_INBOX = f"{INBOX}deliveries/"
PICK_DIGESTS_PREFIX = f"{TABLES}pick_digests/"
LEDGER_PREFIX = f"{TABLES}ledger/"
PAYOUTS_TABLE_PREFIX = f"{TABLES}payouts/"
AUDIT_TABLE_PREFIX = f"{TABLES}audit/"
ALERTS_PREFIX = f"{TABLES}alerts/"
COMMITMENT_BATCHES = f"{COMMITMENTS}batches/"
COMMITMENT_LEAVES = f"{COMMITMENTS}leaves/"
COMMITMENT_CHAINS = f"{COMMITMENTS}chains/"
COMMITMENT_DAYS = f"{COMMITMENTS}days/"
ANALYSES_CACHE = f"{CACHE}analyses/"
ANALYZE_RUNS = f"{CACHE}ratelimits/analyze/"

SERVING_DIR = "serving"
"""The serving snapshots' folder inside the warehouse directory."""
SERVING_POINTER = "CURRENT"
"""The file in :data:`SERVING_DIR` naming the snapshot to serve (replaced atomically)."""
MARTS_DIR = "marts"
"""The dbt marts' builds inside the warehouse directory."""
MARTS_POINTER = "CURRENT"
"""The file in :data:`MARTS_DIR` naming the build to read (replaced atomically)."""
MARTS_DATABASE = "marts.duckdb"
ANALYST_DIR = "analyst"
"""The analyst database's builds inside the warehouse directory."""
ANALYST_POINTER = "CURRENT"
ANALYST_DATABASE = "analyst.duckdb"
"""The analyst database's stable name in the warehouse directory: a hard link to the current build,
replaced atomically, so every client opens one path."""
"""The DuckDB file inside every marts build (one name: dbt's views name its catalog)."""
WAREHOUSE_DATASETS = "datasets"
JWT_SECRET_FILE = "jwt-secret"
"""The development token secret in the warehouse directory (used without ``ODDSFORGE_JWT_SECRET``)."""
TEMP_SUFFIX = ".tmp"

_DATASET_KEY = re.compile(
    rf"{DATASETS_INBOX}(?P<user>[^/]+)/(?P<id>[^/]+)/"
    r"(?:v(?P<version>\d{6})/(?:(?P<meta>meta\.json)|upload-[0-9a-f]{16}\.\w+)"
    r"|edits/(?P<edit>\d{6})\.json|(?P<deleted>deleted\.json))"
)
_MODEL_KEY = re.compile(rf"{MODELS_INBOX}([^/]+)/([^/]+)/(?:v(\d{{6}})|archived)\.json")
_SUBSCRIPTION_KEY = re.compile(rf"{SUBSCRIPTIONS_INBOX}([^/]+)/([^/]+)/(\d{{6}})\.json")
_REVIEW_KEY = re.compile(rf"{REVIEWS_INBOX}([^/]+)/v(\d{{6}})\.json")
_RATING_KEY = re.compile(
    rf"{RATINGS_INBOX}(?P<model>[^/]+)/(?P<review>[0-9a-f]{{16}})/"
    r"(?:v(?P<text>\d{6})|(?P<reply>reply)|helpful/(?P<voter>[^/]+)|reports/(?P<reporter>[^/]+)"
    r"|decisions/(?P<decision>\d{6}))\.json"
)
_REVIEW_ID = re.compile(r"[0-9a-f]{16}")
_ISO_DATE = r"(\d{4}-\d\d-\d\d)"
_BACKTEST_KEY = re.compile(rf"{BACKTESTS_INBOX}([^/]+)/v(\d{{6}})/{_ISO_DATE}_{_ISO_DATE}\.json")
_DRAFT_DIGEST = re.compile(r"[0-9a-f]{16}")
_DRAFT_BACKTEST_KEY = re.compile(
    rf"{BACKTESTS_INBOX}([^/]+)/drafts/([0-9a-f]{{16}})/{_ISO_DATE}_{_ISO_DATE}\.json"
)
_JOB_ID = re.compile(r"job-[0-9a-f]{16}")
_TUNING_KEY = re.compile(rf"{TUNING_INBOX}([^/]+)/(job-[0-9a-f]{{16}})\.n(\d+)\.json")
_JOB_KEY = re.compile(
    rf"{JOBS_INBOX}([^/]+)/(job-[0-9a-f]{{16}})/"
    r"(?:(?P<part>request|result|failed)|(?P<step>attempt|progress)-(?P<n>\d{3}))\.json"
)
_STRIPE_EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,200}")
_STRIPE_ACCOUNT_KEY = re.compile(rf"{STRIPE_ACCOUNTS_INBOX}([^/]+)\.json")
_TERMS_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PAID_ATTEMPT = re.compile(r"(\d{6})\.json")
_STRIPE_OBJECT_ID = re.compile(r"[a-z]{2,4}_[A-Za-z0-9_]{1,200}")
_REFUND_RESULT_KEY = re.compile(rf"{CANCELLATIONS_INBOX}[^/]+/refunded/[^/]+\.json")
_CANCELLED_KEY = re.compile(rf"{CANCELLATIONS_INBOX}([^/]+)/cancelled\.json")
_ANALYZE_RUN_KEY = re.compile(rf"{ANALYZE_RUNS}[^/]+/(\d+)-[0-9a-f]+")
_SERVING_SNAPSHOT = re.compile(r"serving-[A-Za-z0-9._-]+\.duckdb")
_MARTS_BUILD = re.compile(r"marts-[A-Za-z0-9_-]+")
_ANALYST_BUILD = re.compile(r"analyst-[A-Za-z0-9_-]+\.duckdb")
_SELF_EXCLUSION_KEY = re.compile(
    rf"{SELF_EXCLUSIONS_INBOX}([^/]+)/(\d{{4}}-\d{{2}}-\d{{2}})-(30d|6m|1y|permanent)\.json"
)
_FOLLOW_KEY = re.compile(rf"{FOLLOWS_INBOX}([^/]+)/([^/]+)/(\d{{6}})\.json")
_WEBHOOK_ID = re.compile(r"wh_[0-9a-f]{16}")
_WEBHOOK_KEY = re.compile(rf"{WEBHOOKS_INBOX}([^/]+)/(wh_[0-9a-f]{{16}})(\.deleted)?\.json")
_PREFERENCES_KEY = re.compile(rf"{PREFERENCES_INBOX}([^/]+)/(\d{{6}})\.json")
_CHANNEL = re.compile(r"email|webhook-wh_[0-9a-f]{16}")
_DELIVERY_KEY = re.compile(r"ntf_[0-9a-f]{32}")
_DELIVERY_RECORD = re.compile(
    rf"{DELIVERIES_INBOX}([^/]+)/({_CHANNEL.pattern})/(ntf_[0-9a-f]{{32}})/(?:(attempt|result)-(\d{{3}})|(dead))\.json"
)
_AUDIT_KEY = re.compile(rf"{AUDIT_INBOX}([0-9a-f]{{32}})\.json")
_BATCH_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}")
_BATCH_KEY = re.compile(rf"{COMMITMENT_BATCHES}(\d{{4}}-\d\d-\d\d)/({_BATCH_ID.pattern})\.json")
_CHAIN_KEY = re.compile(rf"{COMMITMENT_CHAINS}([^/]+)/(\d{{8}})\.json")
_DAY_ROOT_KEY = re.compile(rf"{COMMITMENT_DAYS}(\d{{4}}-\d\d-\d\d)\.json")
_IDEMPOTENCY_KEY = re.compile(rf"{IDEMPOTENCY}([^/]+)/([0-9a-f]{{64}})/(?:claim-(\d{{3}})|answer)\.json")


def check_user_id(user_id: str) -> str:
    """``domain.models.registry.check_user_id``, imported on first use: the registry imports the model
    config (pydantic, numpy), which the lake and ``oddsforge sql`` must not pay for at start-up."""
    from domain.models.registry import check_user_id as check

    return check(user_id)


def owner_of(model_id: str) -> str | None:
    """``domain.models.registry.owner_of``, imported on first use (see :func:`check_user_id`)."""
    from domain.models.registry import owner_of as owner

    return owner(model_id)


# ---- raw deliveries and tables --------------------------------------------------------------------


def raw_key(table: str, sport: str, day: dt.date, source: str) -> str:
    return f"{raw_prefix(table, sport)}{day.isoformat()}/{source}.parquet"


def raw_prefix(table: str, sport: str) -> str:
    """Every source's raw objects of ``table`` for one sport."""
    return f"{RAW}{table}/{sport}/"


def table_key(table: str, sport: str | None = None, day: dt.date | None = None) -> str:
    """An unpartitioned table's object, or with ``sport`` and ``day`` a daily partition's."""
    if sport is None:
        return f"{TABLES}{table}.parquet"
    if day is None:
        raise ValueError(f"a daily partition of {table!r} needs its day")
    return f"{table_prefix(table, sport)}{day.isoformat()}.parquet"


def table_prefix(table: str, sport: str | None = None) -> str:
    """The folder of a table's objects (partitions, months, shards), or of one sport's."""
    return f"{TABLES}{table}/" if sport is None else f"{TABLES}{table}/{sport}/"


# ---- month objects: compacted periods of daily tables -------------------------------------------

PERIOD_PATTERN = r"^(.*)/(\d{4}-\d\d)(-\d\d)?(/.*|\.parquet)$"
"""A daily or month object's path: (1) what precedes its last date segment, (2) the month, (3) the
day's ``-DD``, empty for a month object, (4) what follows. Python (:func:`parse_period_key`) and SQL
(the analysts' views, dbt's staging) split keys with this one pattern."""
_PERIOD = re.compile(PERIOD_PATTERN)

CLUSTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "analyses": ("model_id", "version"),
    "analysis_weights": ("model_id", "version"),
    "settled_picks": ("model_id", "version"),
    "model_performance": ("model_id", "version"),
    "source_scores": ("source",),
}
"""Tables whose objects keep each model version's rows together (``domain.models.engine.clustered``),
or each source's (``source_scores``); a month object of them is sorted the same way, so one model's
read still skips the others' row groups."""


def partition_column(table: str) -> str:
    """The date column a daily table is partitioned by."""
    return "date" if table == "model_performance" else "game_date"


def month_of(day: dt.date) -> str:
    return f"{day:%Y-%m}"


def month_span(month: str) -> tuple[dt.date, dt.date]:
    """``[first day, first day of the next month)`` of ``YYYY-MM``."""
    first = dt.date.fromisoformat(f"{month}-01")
    return first, (first + dt.timedelta(days=32)).replace(day=1)


def month_table_key(table: str, sport: str, month: str) -> str:
    """A daily table's month object: every row of ``month`` (``YYYY-MM``), replacing its day objects."""
    return f"{table_prefix(table, sport)}{month}.parquet"


def raw_month_key(table: str, sport: str, month: str, source: str) -> str:
    """One source's raw rows of ``month``, replacing its day objects of that month."""
    return f"{raw_prefix(table, sport)}{month}/{source}.parquet"


@dataclass(frozen=True)
class PeriodKey:
    """A daily object (``day`` set) or the month object that replaces a month of them."""

    folder: str
    """The listing that holds the family's objects: the key up to its period segment."""
    family: str
    """The key with its period replaced by ``*``: a day object and its month object share it."""
    month: str
    day: dt.date | None
    """None for a month object."""

    @property
    def span(self) -> tuple[dt.date, dt.date]:
        """``[first, end)`` of the dates its rows may hold."""
        if self.day is None:
            return month_span(self.month)
        return self.day, self.day + dt.timedelta(days=1)

    @property
    def table(self) -> str:
        return self.family.split("/")[1]

    @property
    def sport(self) -> str:
        return self.family.split("/")[2]

    @property
    def date_column(self) -> str:
        """The column its rows are partitioned by."""
        return partition_column(self.table) if self.family.startswith(TABLES) else "game_date"

    def same_month(self, other: PeriodKey) -> bool:
        """Whether ``other`` is of the same family and month (the month object or one of its days)."""
        return self.family == other.family and self.month == other.month

    @property
    def month_key(self) -> str:
        """The month object of the family and month (the key itself for a month object)."""
        return self.family.replace("*", self.month, 1)


def parse_period_key(key: str) -> PeriodKey | None:
    """What a raw or tidy daily object, shard or month object covers (its last date segment); None
    for anything else (unpartitioned tables, the monthly ledger, payouts and audit objects)."""
    if not key.startswith((RAW, TABLES)) or not key.endswith(".parquet"):
        return None
    match = _PERIOD.fullmatch(key)
    if match is None or len(key.split("/")) < 4:
        return None
    try:
        day = dt.date.fromisoformat(match[2] + match[3]) if match[3] else None
        month_span(match[2])
    except ValueError:
        return None
    return PeriodKey(f"{match[1]}/", f"{match[1]}/*{match[4]}", match[2], day)


def effective_keys(keys: Iterable[str]) -> list[str]:
    """``keys`` without the day objects a month object of their family replaces.

    A month object wins over every day object of its month: compaction writes it, then deletes the
    days, and a reader listing in between, or a day left by an interrupted compaction, never counts
    a row twice. Order is kept."""
    keys = list(keys)
    parsed = {k: parse_period_key(k) for k in keys}
    months = {(p.family, p.month) for p in parsed.values() if p is not None and p.day is None}
    return [k for k in keys if (p := parsed[k]) is None or p.day is None or (p.family, p.month) not in months]


def ledger_key(month: str) -> str:
    return f"{LEDGER_PREFIX}{month}.parquet"


def payouts_table_key(month: str) -> str:
    return f"{PAYOUTS_TABLE_PREFIX}{month}.parquet"


def alert_key(alert_id: str) -> str:
    return f"{ALERTS_PREFIX}{alert_id}.json"


def audit_key(record_id: str) -> str:
    """An audit record (``domain.compliance.audit``): its id is a hex digest of its business key."""
    if not re.fullmatch(r"[0-9a-f]{32}", record_id):
        raise ValueError(f"audit record id {record_id!r} is not 32 lowercase hex digits")
    return f"{AUDIT_INBOX}{record_id}.json"


def parse_audit_key(key: str) -> str | None:
    """The record id of an audit record's key; None for anything else."""
    match = _AUDIT_KEY.fullmatch(key)
    return None if match is None else match[1]


def audit_table_key(month: str) -> str:
    """The ``audit`` table's object of a month (``YYYY-MM``, UTC) of records."""
    return f"{AUDIT_TABLE_PREFIX}{month}.parquet"


# ---- models ---------------------------------------------------------------------------------------


def user_models_prefix(user_id: str) -> str:
    """Every model ``user_id`` owns (and, for a user id that is a prefix of others, theirs too)."""
    return f"{MODELS_INBOX}{user_id}/"


def model_prefix(model_id: str) -> str:
    owner = owner_of(model_id)
    if owner is None:
        raise ValueError(f"{model_id!r} is not a model id")
    return f"{MODELS_INBOX}{owner}/{model_id}/"


def model_version_key(model_id: str, version: int) -> str:
    return f"{model_prefix(model_id)}v{version:06d}.json"


def model_archived_key(model_id: str) -> str:
    return f"{model_prefix(model_id)}archived.json"


@dataclass(frozen=True)
class ModelKey:
    model_id: str
    version: int | None
    """None for the archive marker."""


def parse_model_key(key: str) -> ModelKey | None:
    """What a registry key names; None for anything else (including a folder that disagrees with
    the owner encoded in the model id)."""
    match = _MODEL_KEY.fullmatch(key)
    if match is None or owner_of(match[2]) != match[1]:
        return None
    return ModelKey(match[2], int(match[3]) if match[3] else None)


# ---- datasets -------------------------------------------------------------------------------------


def _dataset_owner(dataset_id: str) -> str | None:
    # Imported on first use: the dataset rules import pandera (a second or more), which the lake and
    # every other key must not pay for.
    from domain.datasets.registry import dataset_owner

    return dataset_owner(dataset_id)


def user_datasets_prefix(user_id: str) -> str:
    return f"{DATASETS_INBOX}{user_id}/"


def dataset_prefix(dataset_id: str) -> str:
    owner = _dataset_owner(dataset_id)
    if owner is None:
        raise ValueError(f"{dataset_id!r} is not a dataset id")
    return f"{DATASETS_INBOX}{owner}/{dataset_id}/"


def dataset_meta_key(dataset_id: str, version: int) -> str:
    return f"{dataset_prefix(dataset_id)}v{version:06d}/meta.json"


def dataset_upload_key(dataset_id: str, version: int, extension: str, token: str) -> str:
    """An upload's name; ``token`` (16 random hex digits) keeps concurrent writers of one version
    from ever touching each other's bytes."""
    return f"{dataset_prefix(dataset_id)}v{version:06d}/upload-{token}.{extension}"


def dataset_edit_key(dataset_id: str, number: int) -> str:
    return f"{dataset_prefix(dataset_id)}edits/{number:06d}.json"


def dataset_deleted_key(dataset_id: str) -> str:
    return f"{dataset_prefix(dataset_id)}deleted.json"


@dataclass(frozen=True)
class DatasetKey:
    dataset_id: str
    kind: Literal["meta", "upload", "edit", "deleted"]
    number: int | None
    """The version (``meta``, ``upload``) or edit number; None for the tombstone."""


def parse_dataset_key(key: str) -> DatasetKey | None:
    """What an inbox key names; None for anything else (or a folder that disagrees with the id)."""
    match = _DATASET_KEY.fullmatch(key)
    if match is None or _dataset_owner(match["id"]) != match["user"]:
        return None
    if match["deleted"]:
        return DatasetKey(match["id"], "deleted", None)
    if match["edit"]:
        return DatasetKey(match["id"], "edit", int(match["edit"]))
    return DatasetKey(match["id"], "meta" if match["meta"] else "upload", int(match["version"]))


def dataset_rows_key(dataset_id: str, version: int) -> str:
    return f"{TABLES}dataset_rows/{dataset_id}/v{version:06d}.parquet"


def dataset_report_key(dataset_id: str, version: int, name: str) -> str:
    """``report.json``, ``ge_result.json`` or ``data_docs.html`` of one version."""
    return f"{REPORTS}{dataset_id}/v{version:06d}/{name}"


def dataset_warehouse_location(dataset_id: str, version: int) -> str:
    """A small version's DuckDB file, relative to the warehouse directory."""
    return f"{WAREHOUSE_DATASETS}/{dataset_id}/v{version:06d}.duckdb"


# ---- free subscriptions, reviews, backtests -------------------------------------------------------


def user_subscriptions_prefix(user_id: str) -> str:
    return f"{SUBSCRIPTIONS_INBOX}{user_id}/"


def subscription_prefix(user_id: str, model_id: str) -> str:
    return f"{SUBSCRIPTIONS_INBOX}{user_id}/{model_id}/"


def subscription_event_key(user_id: str, model_id: str, n: int) -> str:
    return f"{subscription_prefix(check_user_id(user_id), model_id)}{n:06d}.json"


@dataclass(frozen=True)
class SubscriptionKey:
    user_id: str
    model_id: str
    n: int


def parse_subscription_key(key: str) -> SubscriptionKey | None:
    """What a free subscription event key names; None for anything else."""
    match = _SUBSCRIPTION_KEY.fullmatch(key)
    if match is None or owner_of(match[2]) is None:
        return None
    return SubscriptionKey(match[1], match[2], int(match[3]))


def reviews_prefix(model_id: str) -> str:
    return f"{REVIEWS_INBOX}{model_id}/"


def review_key(model_id: str, version: int) -> str:
    if owner_of(model_id) is None:
        raise ValueError(f"{model_id!r} is not a model id")
    return f"{reviews_prefix(model_id)}v{version:06d}.json"


@dataclass(frozen=True)
class ReviewKey:
    model_id: str
    version: int


def parse_review_key(key: str) -> ReviewKey | None:
    """The version a review decision's key names; None for anything else."""
    match = _REVIEW_KEY.fullmatch(key)
    return None if match is None else ReviewKey(match[1], int(match[2]))


# ---- users' reviews (ratings) of models -----------------------------------------------------------


def ratings_prefix(model_id: str) -> str:
    """Every user review of ``model_id``."""
    if owner_of(model_id) is None:
        raise ValueError(f"{model_id!r} is not a model id")
    return f"{RATINGS_INBOX}{model_id}/"


def rating_prefix(model_id: str, review_id: str) -> str:
    if _REVIEW_ID.fullmatch(review_id) is None:
        raise ValueError(f"{review_id!r} is not a review id")
    return f"{ratings_prefix(model_id)}{review_id}/"


RatingRecord = Literal["text", "reply", "helpful", "report", "decision"]


def rating_key(model_id: str, review_id: str, record: RatingRecord, n: int = 0, user_id: str = "") -> str:
    """A review's object: its text ``n``, the creator's reply, ``user_id``'s helpful vote or
    report, or the operator's decision ``n``."""
    prefix = rating_prefix(model_id, review_id)
    if record == "text":
        return f"{prefix}v{n:06d}.json"
    if record == "reply":
        return f"{prefix}reply.json"
    if record == "decision":
        return f"{prefix}decisions/{n:06d}.json"
    folder = "helpful" if record == "helpful" else "reports"
    return f"{prefix}{folder}/{check_user_id(user_id)}.json"


@dataclass(frozen=True)
class RatingKey:
    model_id: str
    review_id: str
    record: RatingRecord
    n: int | None
    """The text's or decision's number; None otherwise."""
    user_id: str | None
    """The voter or reporter; None otherwise."""


def parse_rating_key(key: str) -> RatingKey | None:
    """What a user review's object key names; None for anything else."""
    match = _RATING_KEY.fullmatch(key)
    if match is None or owner_of(match["model"]) is None:
        return None
    model, review = match["model"], match["review"]
    if match["text"]:
        return RatingKey(model, review, "text", int(match["text"]), None)
    if match["decision"]:
        return RatingKey(model, review, "decision", int(match["decision"]), None)
    if match["voter"]:
        return RatingKey(model, review, "helpful", None, match["voter"])
    if match["reporter"]:
        return RatingKey(model, review, "report", None, match["reporter"])
    return RatingKey(model, review, "reply", None, None)


def backtests_prefix(model_id: str) -> str:
    return f"{BACKTESTS_INBOX}{model_id}/"


def backtest_key(model_id: str, version: int, start: dt.date, end: dt.date) -> str:
    return f"{backtests_prefix(model_id)}v{version:06d}/{start.isoformat()}_{end.isoformat()}.json"


@dataclass(frozen=True)
class BacktestKey:
    model_id: str
    version: int
    start: dt.date
    end: dt.date


def parse_backtest_key(key: str) -> BacktestKey | None:
    """The model version and span a recorded backtest's key names; None for anything else."""
    match = _BACKTEST_KEY.fullmatch(key)
    try:
        dates = [dt.date.fromisoformat(match[i]) for i in (3, 4)] if match else None
    except ValueError:  # digits that are no date
        return None
    return None if match is None or dates is None else BacktestKey(match[1], int(match[2]), *dates)


def draft_backtest_key(model_id: str, digest: str, start: dt.date, end: dt.date) -> str:
    """A draft config's backtest recorded against a model of its author's: ``digest`` (16 hex digits
    of the draft's canonical JSON) keeps one report per draft and span, as versions do."""
    if owner_of(model_id) is None or not _DRAFT_DIGEST.fullmatch(digest):
        raise ValueError(f"not a model id and draft digest: {model_id!r}, {digest!r}")
    return f"{backtests_prefix(model_id)}drafts/{digest}/{start.isoformat()}_{end.isoformat()}.json"


@dataclass(frozen=True)
class DraftBacktestKey:
    model_id: str
    digest: str
    start: dt.date
    end: dt.date


def parse_draft_backtest_key(key: str) -> DraftBacktestKey | None:
    """The model, draft and span a recorded draft backtest's key names; None for anything else."""
    match = _DRAFT_BACKTEST_KEY.fullmatch(key)
    try:
        dates = [dt.date.fromisoformat(match[i]) for i in (3, 4)] if match else None
    except ValueError:
        return None
    return None if match is None or dates is None else DraftBacktestKey(match[1], match[2], *dates)


def tuning_key(model_id: str, job_id: str, trials: int) -> str:
    """A tuning run's report; the key carries the configurations it tried, so the listing's
    disclosure counts them from one listing of the inbox."""
    if owner_of(model_id) is None or not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"not a model id and job id: {model_id!r}, {job_id!r}")
    return f"{TUNING_INBOX}{model_id}/{job_id}.n{trials}.json"


@dataclass(frozen=True)
class TuningKey:
    model_id: str
    job_id: str
    trials: int


def parse_tuning_key(key: str) -> TuningKey | None:
    """The model, job and configurations tried a tuning report's key names; None for anything else."""
    match = _TUNING_KEY.fullmatch(key)
    return None if match is None else TuningKey(match[1], match[2], int(match[3]))


# ---- jobs (long backtests, tuning) -----------------------------------------------------------------

JobPart = Literal["request", "attempt", "progress", "result", "failed"]


def is_job_id(job_id: str) -> bool:
    return _JOB_ID.fullmatch(job_id) is not None


def user_jobs_prefix(user_id: str) -> str:
    return f"{JOBS_INBOX}{check_user_id(user_id)}/"


def job_prefix(user_id: str, job_id: str) -> str:
    """A job's folder; the owner's id is part of it, so nobody else's request can name it."""
    if not is_job_id(job_id):
        raise ValueError(f"{job_id!r} is not a job id")
    return f"{user_jobs_prefix(user_id)}{job_id}/"


def job_key(user_id: str, job_id: str, part: JobPart, attempt: int | None = None) -> str:
    """One object of a job: ``attempt`` and ``progress`` take the attempt's number."""
    if (attempt is None) != (part in ("request", "result", "failed")):
        raise ValueError(f"a job's {part} object {'takes' if attempt is None else 'has no'} attempt number")
    name = part if attempt is None else f"{part}-{attempt:03d}"
    return f"{job_prefix(user_id, job_id)}{name}.json"


@dataclass(frozen=True)
class JobKey:
    user_id: str
    job_id: str
    part: JobPart
    attempt: int | None


def parse_job_key(key: str) -> JobKey | None:
    """What a job's object is; None for anything else."""
    match = _JOB_KEY.fullmatch(key)
    if match is None:
        return None
    part: JobPart = match["part"] or match["step"]
    return JobKey(match[1], match[2], part, None if match["n"] is None else int(match["n"]))


# ---- Stripe and payouts ---------------------------------------------------------------------------


def stripe_event_key(event_id: str) -> str:
    """The inbox key of an event; the id is checked so a payload cannot choose another path."""
    if not _STRIPE_EVENT_ID.fullmatch(event_id):
        raise ValueError(f"{event_id!r} is not a Stripe event id")
    return f"{STRIPE_EVENTS_INBOX}{event_id}.json"


def stripe_account_key(creator_id: str) -> str:
    """A creator's Connect account id (created once, on the creator's request)."""
    return f"{STRIPE_ACCOUNTS_INBOX}{check_user_id(creator_id)}.json"


def stripe_account_creator(key: str) -> str | None:
    """The creator whose Connect account ``key`` records; None for anything else."""
    match = _STRIPE_ACCOUNT_KEY.fullmatch(key)
    return None if match is None else match[1]


def account_states_prefix(creator_id: str) -> str:
    return f"{STRIPE_ACCOUNT_STATES_INBOX}{check_user_id(creator_id)}/"


def account_state_key(creator_id: str, event_created: int, event_id: str) -> str:
    """The account's state as an ``account.updated`` event reported it: keys sort by the event's
    creation time (then id), so the last key of a creator's folder is the current state."""
    if not 0 <= event_created < 10**10:
        raise ValueError(f"event time {event_created} is not a Unix time in seconds")
    if not _STRIPE_EVENT_ID.fullmatch(event_id):
        raise ValueError(f"{event_id!r} is not a Stripe event id")
    return f"{account_states_prefix(creator_id)}{event_created:010d}-{event_id}.json"


def stripe_customer_key(user_id: str) -> str:
    return f"{STRIPE_CUSTOMERS_INBOX}{user_id}.json"


def stripe_prices_prefix(model_id: str) -> str:
    return f"{STRIPE_PRICES_INBOX}{model_id}/"


def stripe_price_key(model_id: str, price_cents: int) -> str:
    return f"{stripe_prices_prefix(model_id)}{price_cents}.json"


def paid_attempts_prefix(user_id: str, model_id: str) -> str:
    return f"{STRIPE_SUBSCRIPTIONS_INBOX}{user_id}/{model_id}/"


PaidAttemptRecord = Literal["attempt", "session", "cancel"]


def paid_attempt_key(user_id: str, model_id: str, attempt: int, record: PaidAttemptRecord = "attempt") -> str:
    """Checkout attempt n itself (recorded before Stripe is called), the Checkout Session Stripe
    created for it, or the cancellation the user asked for."""
    suffix = "" if record == "attempt" else f".{record}"
    return f"{paid_attempts_prefix(user_id, model_id)}{attempt:06d}{suffix}.json"


def parse_paid_attempt_key(key: str, user_id: str, model_id: str) -> int | None:
    """The number of the pair's attempt that ``key`` records; None for anything else (what Stripe
    created, a cancellation, another pair's objects). User ids are not checked here, so the pair's
    folder is matched as a prefix rather than parsed."""
    prefix = paid_attempts_prefix(user_id, model_id)
    match = _PAID_ATTEMPT.fullmatch(key.removeprefix(prefix)) if key.startswith(prefix) else None
    return None if match is None else int(match[1])


def user_paid_attempts_prefix(user_id: str) -> str:
    """Every paid subscription attempt of ``user_id``, to any model."""
    return f"{STRIPE_SUBSCRIPTIONS_INBOX}{check_user_id(user_id)}/"


def payouts_month_prefix(month: str) -> str:
    return f"{PAYOUTS_INBOX}{month}/"


def payout_intent_key(month: str, creator_id: str) -> str:
    return f"{payouts_month_prefix(month)}{creator_id}.json"


def payout_attempt_key(month: str, creator_id: str) -> str:
    return f"{payouts_month_prefix(month)}attempts/{creator_id}.json"


def payout_transfer_key(month: str, creator_id: str) -> str:
    return f"{payouts_month_prefix(month)}transfers/{creator_id}.json"


def creator_terms_prefix(user_id: str) -> str:
    return f"{CREATOR_TERMS_INBOX}{check_user_id(user_id)}/"


def check_terms_version(version: str) -> str:
    """``version`` if it can name a terms version in a key (a date or a name: letters, digits, ``. _ -``)."""
    if not _TERMS_VERSION.fullmatch(version):
        raise ValueError(f"{version!r} is not a terms version (letters, digits, . _ -; at most 64)")
    return version


def creator_terms_key(user_id: str, version: str) -> str:
    """``user_id``'s acceptance of the creator terms ``version``."""
    return f"{creator_terms_prefix(user_id)}{check_terms_version(version)}.json"


def is_payout_intent_key(key: str) -> bool:
    parts = key.removeprefix(PAYOUTS_INBOX).split("/")
    return key.startswith(PAYOUTS_INBOX) and len(parts) == 2 and parts[1].endswith(".json")


def is_payout_transfer_key(key: str) -> bool:
    parts = key.removeprefix(PAYOUTS_INBOX).split("/")
    return key.startswith(PAYOUTS_INBOX) and len(parts) == 3 and parts[1] == "transfers"


CancellationRecord = Literal["cancel", "cancelled"]
RefundRecord = Literal["refunds", "refunded"]


def _stripe_id(value: str) -> str:
    if not _STRIPE_OBJECT_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a Stripe object id")
    return value


def cancellation_key(subscription_id: str, record: CancellationRecord) -> str:
    """A fair cancellation's intent (written before Stripe is called) or its result."""
    return f"{CANCELLATIONS_INBOX}{_stripe_id(subscription_id)}/{record}.json"


def refund_key(subscription_id: str, invoice_id: str, record: RefundRecord) -> str:
    """The refund of one paid invoice of a cancelled subscription: its intent (``refunds``) or the
    Refund Stripe returned (``refunded``, which the ledger posts)."""
    return f"{CANCELLATIONS_INBOX}{_stripe_id(subscription_id)}/{record}/{_stripe_id(invoice_id)}.json"


def is_refund_result_key(key: str) -> bool:
    return _REFUND_RESULT_KEY.fullmatch(key) is not None


def parse_cancelled_key(key: str) -> str | None:
    """The subscription a fair cancellation's result record names; None for any other key."""
    match = _CANCELLED_KEY.fullmatch(key)
    return match.group(1) if match else None


# ---- self-exclusions -----------------------------------------------------------------------------


def self_exclusions_prefix(user_id: str) -> str:
    return f"{SELF_EXCLUSIONS_INBOX}{check_user_id(user_id)}/"


def self_exclusion_key(user_id: str, start: dt.date, period: str) -> str:
    """A user's self-exclusion of ``period`` (``30d``, ``6m``, ``1y``, ``permanent``) from ``start``:
    one object per user, day and period, created once, so a retried request stores nothing twice."""
    key = f"{self_exclusions_prefix(user_id)}{start.isoformat()}-{period}.json"
    if _SELF_EXCLUSION_KEY.fullmatch(key) is None:
        raise ValueError(f"{period!r} is not a self-exclusion period")
    return key


@dataclass(frozen=True)
class SelfExclusionKey:
    user_id: str
    start: dt.date
    period: str


def parse_self_exclusion_key(key: str) -> SelfExclusionKey | None:
    """The user, start day and period a self-exclusion key names; None for anything else."""
    match = _SELF_EXCLUSION_KEY.fullmatch(key)
    if match is None:
        return None
    try:
        return SelfExclusionKey(match[1], dt.date.fromisoformat(match[2]), match[3])
    except ValueError:
        return None


# ---- pick commitments ----------------------------------------------------------------------------


def batch_id(written_at: dt.datetime, token: str) -> str:
    """A batch's id: its write time in UTC to the microsecond, then ``token`` (8 random hex digits)."""
    found = f"{written_at.astimezone(dt.UTC):%Y%m%dT%H%M%S%f}Z-{token}"
    if _BATCH_ID.fullmatch(found) is None:
        raise ValueError(f"{token!r} is not 8 lowercase hex digits")
    return found


def check_batch_id(value: str) -> str:
    if _BATCH_ID.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a batch id")
    return value


def commitment_batches_prefix(day: dt.date) -> str:
    return f"{COMMITMENT_BATCHES}{day.isoformat()}/"


def commitment_batch_key(day: dt.date, batch: str) -> str:
    """A batch object of picks on games of ``day``."""
    return f"{commitment_batches_prefix(day)}{check_batch_id(batch)}.json"


def commitment_leaves_key(day: dt.date, batch: str) -> str:
    """The leaves a batch's roots were built from, per model, each with its pick's key."""
    return f"{COMMITMENT_LEAVES}{day.isoformat()}/{check_batch_id(batch)}.json"


@dataclass(frozen=True)
class BatchKey:
    day: dt.date
    batch_id: str


def parse_commitment_batch_key(key: str) -> BatchKey | None:
    """The day and id a batch object's key names; None for anything else."""
    match = _BATCH_KEY.fullmatch(key)
    try:
        return None if match is None else BatchKey(dt.date.fromisoformat(match[1]), match[2])
    except ValueError:
        return None


def commitment_chain_prefix(model_id: str) -> str:
    if owner_of(model_id) is None:
        raise ValueError(f"{model_id!r} is not a model id")
    return f"{COMMITMENT_CHAINS}{model_id}/"


def commitment_chain_key(model_id: str, position: int) -> str:
    """Position n (from 1) of a model's chain, claimed create-if-absent by the batch extending it."""
    return f"{commitment_chain_prefix(model_id)}{position:08d}.json"


def parse_commitment_chain_key(key: str) -> tuple[str, int] | None:
    """The model and position a chain key names; None for anything else."""
    match = _CHAIN_KEY.fullmatch(key)
    return None if match is None else (match[1], int(match[2]))


def commitment_day_key(day: dt.date) -> str:
    """The day's root, published once after its last cut-off."""
    return f"{COMMITMENT_DAYS}{day.isoformat()}.json"


def parse_commitment_day_key(key: str) -> dt.date | None:
    match = _DAY_ROOT_KEY.fullmatch(key)
    try:
        return None if match is None else dt.date.fromisoformat(match[1])
    except ValueError:
        return None


# ---- follows and notifications -------------------------------------------------------------------


def follows_prefix(user_id: str, creator_id: str | None = None) -> str:
    """A user's follow events (of one creator when given)."""
    folder = f"{FOLLOWS_INBOX}{check_user_id(user_id)}/"
    return folder if creator_id is None else f"{folder}{check_user_id(creator_id)}/"


def follow_event_key(user_id: str, creator_id: str, n: int) -> str:
    return f"{follows_prefix(user_id, creator_id)}{n:06d}.json"


@dataclass(frozen=True)
class FollowKey:
    user_id: str
    creator_id: str
    n: int


def parse_follow_key(key: str) -> FollowKey | None:
    """What a follow event key names; None for anything else."""
    match = _FOLLOW_KEY.fullmatch(key)
    return None if match is None else FollowKey(match[1], match[2], int(match[3]))


def webhooks_prefix(user_id: str) -> str:
    return f"{WEBHOOKS_INBOX}{check_user_id(user_id)}/"


def check_webhook_id(endpoint_id: str) -> str:
    if not _WEBHOOK_ID.fullmatch(endpoint_id):
        raise ValueError(f"{endpoint_id!r} is not a webhook endpoint id")
    return endpoint_id


def webhook_key(user_id: str, endpoint_id: str, deleted: bool = False) -> str:
    """A webhook endpoint's registration (``wh_`` and 16 random hex digits), or its removal."""
    suffix = ".deleted" if deleted else ""
    return f"{webhooks_prefix(user_id)}{check_webhook_id(endpoint_id)}{suffix}.json"


@dataclass(frozen=True)
class WebhookKey:
    user_id: str
    endpoint_id: str
    deleted: bool


def parse_webhook_key(key: str) -> WebhookKey | None:
    match = _WEBHOOK_KEY.fullmatch(key)
    return None if match is None else WebhookKey(match[1], match[2], match[3] is not None)


def preferences_prefix(user_id: str) -> str:
    return f"{PREFERENCES_INBOX}{check_user_id(user_id)}/"


def preferences_key(user_id: str, n: int) -> str:
    """A user's n-th notification preferences (the greatest n is in force)."""
    return f"{preferences_prefix(user_id)}{n:06d}.json"


def parse_preferences_key(key: str) -> int | None:
    match = _PREFERENCES_KEY.fullmatch(key)
    return None if match is None else int(match[2])


def webhook_channel(endpoint_id: str) -> str:
    """The delivery channel of a webhook endpoint (``email`` is the other kind)."""
    return f"webhook-{check_webhook_id(endpoint_id)}"


def deliveries_prefix(user_id: str, channel: str | None = None) -> str:
    folder = f"{DELIVERIES_INBOX}{check_user_id(user_id)}/"
    if channel is None:
        return folder
    if not _CHANNEL.fullmatch(channel):
        raise ValueError(f"{channel!r} is not a delivery channel")
    return f"{folder}{channel}/"


DeliveryRecord = Literal["attempt", "result", "dead"]


def delivery_record_key(user_id: str, channel: str, key: str, record: DeliveryRecord, n: int = 0) -> str:
    """One record of the delivery of a notification on a channel (``key``: its idempotency key):
    attempt n's intent, its result, or the dead letter."""
    if not _DELIVERY_KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a delivery key")
    name = "dead" if record == "dead" else f"{record}-{n:03d}"
    return f"{deliveries_prefix(user_id, channel)}{key}/{name}.json"


@dataclass(frozen=True)
class DeliveryRecordKey:
    user_id: str
    channel: str
    key: str
    record: DeliveryRecord
    n: int


def parse_delivery_record_key(key: str) -> DeliveryRecordKey | None:
    match = _DELIVERY_RECORD.fullmatch(key)
    if match is None:
        return None
    if match[6]:
        return DeliveryRecordKey(match[1], match[2], match[3], "dead", 0)
    return DeliveryRecordKey(match[1], match[2], match[3], match[4], int(match[5]))  # type: ignore[arg-type]


def pick_digests_key(day: dt.date) -> str:
    """The digests of new picks made for one game date."""
    return f"{PICK_DIGESTS_PREFIX}{day.isoformat()}.parquet"


# ---- the on-demand cache --------------------------------------------------------------------------


def analyses_cache_key(model_id: str, version: int, day: dt.date) -> str:
    return f"{ANALYSES_CACHE}{model_id}/v{version:06d}/{day.isoformat()}.parquet"


def analyze_runs_prefix(user_id: str) -> str:
    return f"{ANALYZE_RUNS}{check_user_id(user_id)}/"


def analyze_run_key(user_id: str, started: dt.datetime, token: str) -> str:
    """One uncached run ``user_id`` started; ``token`` (8 random hex digits) keeps runs started in
    the same millisecond apart."""
    return f"{analyze_runs_prefix(user_id)}{int(started.timestamp() * 1000):013d}-{token}"


def parse_analyze_run_key(key: str) -> dt.datetime | None:
    """When the run a rate-limit key records started (to the millisecond); None for anything else."""
    match = _ANALYZE_RUN_KEY.fullmatch(key)
    return None if match is None else dt.datetime.fromtimestamp(int(match[1]) / 1000, dt.UTC)


# ---- idempotency keys -----------------------------------------------------------------------------


def idempotency_prefix(user_id: str, digest: str) -> str:
    """The records of the ``Idempotency-Key`` whose SHA-256 is ``digest`` (64 hex digits), as
    ``user_id`` sent it: each user's keys are their own."""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"{digest!r} is not a SHA-256 hex digest")
    return f"{IDEMPOTENCY}{check_user_id(user_id)}/{digest}/"


def idempotency_claim_key(user_id: str, digest: str, attempt: int) -> str:
    """Attempt n's claim of a key: the request that may run (a later attempt takes over the claim of
    a request whose process died)."""
    return f"{idempotency_prefix(user_id, digest)}claim-{attempt:03d}.json"


def idempotency_answer_key(user_id: str, digest: str) -> str:
    """The first successful answer to the key's request, replayed to every retry."""
    return f"{idempotency_prefix(user_id, digest)}answer.json"


@dataclass(frozen=True)
class IdempotencyKey:
    user_id: str
    digest: str
    attempt: int | None
    """The claim's attempt; None for the answer."""


def parse_idempotency_key(key: str) -> IdempotencyKey | None:
    """What an ``idempotency/`` object records; None for anything else."""
    match = _IDEMPOTENCY_KEY.fullmatch(key)
    if match is None:
        return None
    return IdempotencyKey(match[1], match[2], int(match[3]) if match[3] else None)


# ---- temporary files ------------------------------------------------------------------------------


def temp_name(name: str, token: str) -> str:
    """The name a file (or folder) called ``name`` is written under before it is renamed into place."""
    return f".{name}.{token}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    """Whether a file name is a write in progress (or one a crash left behind): :func:`temp_name`,
    or DuckDB's write-ahead log beside one."""
    return name.startswith(".") and name.removesuffix(".wal").endswith(TEMP_SUFFIX)


# ---- the warehouse directory ----------------------------------------------------------------------


def serving_snapshot_name(published: dt.datetime, token: str) -> str:
    """A new snapshot's file name in :data:`SERVING_DIR`; ``token`` (8 random hex digits) keeps two
    publications in one second apart."""
    return f"serving-{published:%Y%m%dT%H%M%S}-{token}.duckdb"


def is_serving_snapshot(name: str) -> bool:
    """Whether a pointer's content names a snapshot file inside the serving directory (and nothing
    outside it)."""
    return _SERVING_SNAPSHOT.fullmatch(name) is not None


def marts_build_name(built: dt.datetime, token: str) -> str:
    """A new marts build's folder name in :data:`MARTS_DIR`; ``token`` (8 random hex digits) keeps
    two builds in one second apart."""
    return f"marts-{built:%Y%m%dT%H%M%S}-{token}"


def is_marts_build(name: str) -> bool:
    """Whether a pointer's content names a build folder inside the marts directory (and nothing
    outside it)."""
    return _MARTS_BUILD.fullmatch(name) is not None


def analyst_build_name(built: dt.datetime, token: str) -> str:
    """A new analyst database's file name in :data:`ANALYST_DIR`."""
    return f"analyst-{built:%Y%m%dT%H%M%S}-{token}.duckdb"


def is_analyst_build(name: str) -> bool:
    """Whether a pointer's content names an analyst build inside its directory."""
    return _ANALYST_BUILD.fullmatch(name) is not None
