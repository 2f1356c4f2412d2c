"""The one switch between local and production: every resource is built here from the environment.

Local (nothing set): the lake in ``./data/lake``, the warehouse in ``./data/warehouse``, the
embedded sample league as odds and stats feed. Production: ``ODDSFORGE_LAKE=s3://bucket/prefix``
(credentials and endpoint from the standard AWS variables), ``ODDSFORGE_ODDS_FEED=oddsapi`` with
``ODDS_API_KEY`` read at run time through ``dg.EnvVar``; box scores then come from history imports
(``ODDSFORGE_STATS_FEED=none``, the default whenever the odds feed is not the sample league).
Payments: Stripe once ``STRIPE_API_KEY`` is set (key and ``STRIPE_WEBHOOK_SECRET`` read at run time
through ``dg.EnvVar``; ``STRIPE_API_BASE`` for another Stripe-compatible endpoint); without it,
payouts are planned and recorded as ``pending_stripe`` and no money moves.
Notifications: email through ``ODDSFORGE_SMTP_HOST`` (:func:`mailer_from_env`), webhooks under
``ODDSFORGE_ENV`` and ``ODDSFORGE_WEBHOOK_LOOPBACK_HTTP`` (:func:`webhooks_from_env`).

DuckDB files live under ``ODDSFORGE_WAREHOUSE_DIR`` (default ``./data/warehouse``, the ``warehouse``
resource): serving snapshots, published through its dagster-duckdb ``DuckDBResource``
(``snapshots``), and the dbt marts' builds (``marts/``, each a new file dbt writes). Runs execute
in-process for the CLI, on Dagster's default multiprocess executor when launched by the daemon or the
UI, or on Celery workers with ``ODDSFORGE_EXECUTOR=celery`` (docs/scaling.md). Logs are JSON lines
with ``ODDSFORGE_LOG_FORMAT=json``. The Dagster instance is configured apart, by
``$DAGSTER_HOME/dagster.yaml`` (``deploy/dagster.yaml`` for production: Postgres).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from resources.feeds import NoStatsFeed
from resources.lake import LakeResource
from resources.notify import SmtpResource, WebhooksResource
from resources.odds_api import OddsApiFeed
from resources.payments import PaymentsResource
from resources.sample_feed import SampleLeagueFeed
from resources.warehouse import WarehouseResource
from services.notify import webhook_policy_from_env
from services.payments import API_KEY_ENV

EXECUTORS = ("default", "in_process", "multiprocess", "celery")
LOG_FORMATS = ("text", "json")
CELERY_BROKER_ENV = "ODDSFORGE_CELERY_BROKER"
CELERY_BACKEND_ENV = "ODDSFORGE_CELERY_BACKEND"
DEFAULT_CELERY_URL = "redis://127.0.0.1:6379/0"

FEEDS = ("sample", "oddsapi")


def odds_feed_from_env() -> Any:
    kind = os.environ.get("ODDSFORGE_ODDS_FEED", "sample")
    if kind == "sample":
        return SampleLeagueFeed()
    if kind == "oddsapi":
        base_url = os.environ.get("ODDSFORGE_ODDS_API_URL")
        return OddsApiFeed(api_key=dg.EnvVar("ODDS_API_KEY"), **({"base_url": base_url} if base_url else {}))
    raise ValueError(f"ODDSFORGE_ODDS_FEED={kind!r}; expected one of {', '.join(FEEDS)}")


def stats_feed_from_env() -> Any:
    default = "sample" if os.environ.get("ODDSFORGE_ODDS_FEED", "sample") == "sample" else "none"
    kind = os.environ.get("ODDSFORGE_STATS_FEED", default)
    if kind == "sample":
        return SampleLeagueFeed()
    if kind == "none":
        return NoStatsFeed()
    raise ValueError(f"ODDSFORGE_STATS_FEED={kind!r}; expected sample or none")


def payments_from_env() -> PaymentsResource | None:
    """Stripe when ``STRIPE_API_KEY`` is set (only its presence is read here), else None."""
    return PaymentsResource.from_env() if os.environ.get(API_KEY_ENV) else None


def mailer_from_env() -> SmtpResource | None:
    """The SMTP server for notification email once ``ODDSFORGE_SMTP_HOST`` is set
    (``ODDSFORGE_SMTP_PORT``, default 25; ``ODDSFORGE_SMTP_FROM``; ``ODDSFORGE_SMTP_STARTTLS=1``;
    ``ODDSFORGE_SMTP_USER`` with the password read at run time from ``ODDSFORGE_SMTP_PASSWORD``);
    without it no email is sent."""
    host = os.environ.get("ODDSFORGE_SMTP_HOST")
    if not host:
        return None
    user = os.environ.get("ODDSFORGE_SMTP_USER") or None
    return SmtpResource(
        host=host,
        port=int(os.environ.get("ODDSFORGE_SMTP_PORT") or 25),
        sender=os.environ.get("ODDSFORGE_SMTP_FROM") or "OddsForge <notifications@localhost>",
        username=user,
        password=dg.EnvVar("ODDSFORGE_SMTP_PASSWORD") if user else None,
        starttls=os.environ.get("ODDSFORGE_SMTP_STARTTLS", "") in ("1", "true", "yes"),
    )


def webhooks_from_env() -> WebhooksResource:
    """Where users' webhooks may go (``services.notify.webhook_policy_from_env``)."""
    policy = webhook_policy_from_env()
    return WebhooksResource(production=policy.production, loopback_http=policy.loopback_http)


def executor_from_env() -> dg.ExecutorDefinition | None:
    """The executor of every job (``ODDSFORGE_EXECUTOR``); None keeps Dagster's default.

    ``celery`` sends each step to Celery workers through ``ODDSFORGE_CELERY_BROKER`` (results on
    ``ODDSFORGE_CELERY_BACKEND``), both Redis on loopback by default; the workers are started with
    ``deploy/celery.yaml``, which reads the same variables. One task per worker process at a time:
    a step can run for minutes, so prefetching would idle one worker while another queues steps.
    """
    kind = os.environ.get("ODDSFORGE_EXECUTOR", "default")
    if kind == "default":
        return None
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {
                "broker": os.environ.get(CELERY_BROKER_ENV, DEFAULT_CELERY_URL),
                "backend": os.environ.get(CELERY_BACKEND_ENV, DEFAULT_CELERY_URL),
                "config_source": {"worker_prefetch_multiplier": 1, "task_acks_late": True},
            },
            name="celery",
        )
    raise ValueError(f"ODDSFORGE_EXECUTOR={kind!r}; expected one of {', '.join(EXECUTORS)}")


def log_format() -> str:
    """``text`` (default) or ``json`` (``ODDSFORGE_LOG_FORMAT``): one JSON object per log line."""
    fmt = os.environ.get("ODDSFORGE_LOG_FORMAT", "text")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"ODDSFORGE_LOG_FORMAT={fmt!r}; expected one of {', '.join(LOG_FORMATS)}")
    return fmt


def loggers_from_env() -> dict[str, dg.LoggerDefinition]:
    """Dagster's ``console`` logger as JSON lines when ``ODDSFORGE_LOG_FORMAT=json``."""
    return {"console": dg.json_console_logger} if log_format() == "json" else {}


def build_resources() -> dict[str, Any]:
    """Resources for the Definitions, the CLI and tests (which override single entries)."""
    return {
        "lake": LakeResource.from_env(),
        "warehouse": WarehouseResource.from_env(),
        "odds_feed": odds_feed_from_env(),
        "stats_feed": stats_feed_from_env(),
        "payments": payments_from_env(),
        "mailer": mailer_from_env(),
        "webhooks": webhooks_from_env(),
    }
