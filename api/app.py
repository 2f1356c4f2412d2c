"""The FastAPI application: ``create_app`` for tests and embedding, ``app`` for ``uvicorn api.app:app``.

``app`` is built on first access (PEP 562 module ``__getattr__``), so importing this module reads no
environment and opens nothing; the serving snapshot itself is opened by the first request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.clock import utc_now
from api.errors import error_response, install_error_handlers
from api.guard import install_request_guard
from api.routes import (
    backtests,
    billing,
    catalogue,
    commitments,
    compliance,
    creators,
    datasets,
    execution,
    games,
    health,
    marketplace,
    models,
    notify,
    ratings,
    webhooks,
)
from api.serving import NoSnapshotError, ServingStore
from api.settings import ApiSettings
from domain.datasets.registry import DatasetLimits
from services.backtests import run_draft_job
from services.jobs import JobRunner
from services.notify import resolve
from services.on_demand import ExecutionLimits
from services.payments import Payments
from services.tuning import run_tuning_job
from stores.datasets import DatasetStore
from stores.lake import Lake
from stores.ratings import RatingStore
from stores.registry import RegistryStore
from stores.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)

DESCRIPTION = """\
Read access to OddsForge's games and betting lines.

Every data endpoint needs `Authorization: Bearer <token>` (mint one with `oddsforge token USER_ID`).
Picks, results, analyses, model figures, runs and subscribing also need the token's `birthdate` and
`region` claims to show an age at least the region's minimum (403 `age_verification_required`) in a
region that is not blocked (451 `region_blocked`); `GET /legal` states the rules and the disclaimer.
Errors always have the body `{"error": {"code", "message", "details"}}`. Lists are paginated with
`limit` and the opaque `next_cursor`. Times are ISO 8601 in UTC; prices are decimal odds.
"""


def _package_version() -> str:
    try:
        return version("oddsforge")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


async def _no_snapshot(_: Request, exc: NoSnapshotError) -> JSONResponse:
    log.warning("request refused: %s", exc)
    return error_response(
        503,
        "no_snapshot",
        "no data has been published yet: run `oddsforge demo` or the ingest job, then retry",
        headers={"Retry-After": "5"},
    )


def create_app(
    settings: ApiSettings | None = None, lake: Lake | None = None, payments: Payments | None = None
) -> FastAPI:
    """Build the API over the serving snapshots of ``settings`` and the inbox of ``lake``.

    Both default to the environment (``ODDSFORGE_WAREHOUSE_DIR``, ``ODDSFORGE_LAKE``); ``payments``
    (Stripe) is built from the environment when a request first needs it (``api/payments.py``).
    """
    settings = settings or ApiSettings.from_env()
    lake = lake or Lake.from_env()
    if settings.uses_dev_secret:
        log.info(
            "ODDSFORGE_JWT_SECRET is not set: tokens are checked with the development secret in %s "
            "(`oddsforge token` mints them). Set ODDSFORGE_JWT_SECRET and ODDSFORGE_ENV=production "
            "outside development.",
            settings.jwt_secret_file,
        )
    store = ServingStore(settings.serving_dir, settings.snapshot_check_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()
        app.state.jobs.close()

    app = FastAPI(
        title="OddsForge API", version=_package_version(), description=DESCRIPTION, lifespan=lifespan
    )
    app.state.settings = settings
    app.state.store = store
    app.state.lake = lake
    app.state.registry = RegistryStore(lake)
    app.state.payments = payments
    app.state.datasets = DatasetStore(lake, settings.warehouse_dir)
    app.state.dataset_limits = DatasetLimits()
    app.state.subscriptions = SubscriptionStore(lake)
    app.state.ratings = RatingStore(lake)
    app.state.execution = ExecutionLimits()
    app.state.resolver = resolve  # webhook hosts, resolved in production only; tests replace it
    app.state.clock = utc_now  # the one clock of every route (api/clock.py); tests replace it
    app.state.jobs = JobRunner(
        lake, {"backtest": run_draft_job, "tune": run_tuning_job}, clock=lambda: app.state.clock()
    )
    install_request_guard(app)
    install_error_handlers(app)
    app.add_exception_handler(NoSnapshotError, _no_snapshot)  # type: ignore[arg-type]
    app.include_router(health.router)
    app.include_router(games.router)
    app.include_router(models.router)
    app.include_router(ratings.router)
    app.include_router(backtests.router)
    app.include_router(catalogue.router)
    app.include_router(datasets.router)
    app.include_router(creators.router)
    app.include_router(webhooks.router)
    app.include_router(marketplace.router)
    app.include_router(marketplace.notifications_router)
    app.include_router(billing.router)
    app.include_router(execution.router)
    app.include_router(compliance.legal_router)
    app.include_router(compliance.router)
    app.include_router(commitments.public_router)
    app.include_router(commitments.router)
    app.include_router(notify.follows_router)
    app.include_router(notify.router)
    return app


def __getattr__(name: str) -> FastAPI:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    application = create_app()
    globals()["app"] = application
    return application
