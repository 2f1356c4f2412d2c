"""Who may see what (SPEC 6), for every route that names a model.

A model's listing status is computed live for the one model asked about, with the marketplace's own
rule (``domain.marketplace.listing.listing_status``): its latest version and archive marker from the
registry's inbox and its reviews (read-your-writes), and a suspension from the serving snapshot's
``model_status`` (only the pipeline suspends). A caller

- *reads* a model (its configuration, analyses, on-demand runs) when ``domain.models.registry.can_read``
  says so: the owner, anyone for a free public model, subscribers with access for a paid one (trial,
  active, or past_due within its grace: ``domain.money.subscriptions.access`` at the request's time);
  nobody else while it is suspended;
- *browses* it (its marketplace page and performance) when it is listed or the caller reads it.

Anything else answers 404, exactly like a model that does not exist, so private model ids never leak.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import duckdb
import polars as pl
from fastapi import Request

from api.errors import ApiError
from api.serving import NoSnapshotError, ServingStore
from api.snapshot_cache import SnapshotCache
from domain.marketplace.listing import MODEL_STATUS, listing_status, sticky_suspensions
from domain.models.registry import MODEL_VERSIONS, can_read
from domain.money.subscriptions import SUBSCRIPTIONS, with_access
from domain.tables.schemas import conform
from stores.registry import ModelState, RegistryStore, StoredVersion
from stores.reviews import ReviewStore
from stores.subscriptions import SubscriptionStore


def snapshot_rows(store: ServingStore, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """Rows of ``sql`` on the current snapshot as dicts; none before the first publication or when
    the snapshot predates the table (an older snapshot stays valid until the next one)."""
    try:
        with store.cursor() as cur:
            result = cur.execute(sql, list(params))
            names = [d[0] for d in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    except (NoSnapshotError, duckdb.CatalogException):
        return []


@dataclass(frozen=True)
class ModelView:
    """A model as the marketplace sees it now."""

    state: ModelState
    latest: StoredVersion
    listing: dict[str, Any]
    """Its :data:`domain.marketplace.listing.MODEL_STATUS` row (``status``, ``reason``, ``since``)."""

    @property
    def status(self) -> str:
        return self.listing["status"]

    @cached_property
    def row(self) -> dict[str, Any]:
        """The latest version's ``model_versions`` row, ``suspended`` while the marketplace holds it
        (computed once per cached view: never mutate)."""
        row = self.latest.row()
        return row | {"status": "suspended" if self.status == "suspended" else row["status"]}


_VIEWS: SnapshotCache[ModelView] = SnapshotCache(max_entries=4096)
"""Views of the current snapshot by everything they are computed from, so the marketplace's rule
runs once per model and change, not per request."""


def load_view(request: Request, model_id: str) -> ModelView | None:
    """The model's :class:`ModelView`; None if no such model.

    The model's registry state (and, for a paid public model, its review listing) is checked on
    every call (``RegistryStore.state``), so a creator's or reviewer's write shows at once; the rest
    comes from immutable objects and the snapshot, and is computed once for each combination."""
    registry: RegistryStore = request.app.state.registry
    state = registry.state(model_id)
    if state is None:
        return None
    latest = registry.read(state, state.latest)
    sharing = latest.payload["sharing"]
    reviews = ReviewStore(registry.lake)
    reviewed = tuple(reviews.listing(model_id)) if sharing["price_cents"] > 0 and sharing["public"] else None

    def compute() -> ModelView:
        versions = pl.DataFrame([latest.row()], schema=MODEL_VERSIONS)
        previous = pl.DataFrame(
            snapshot_rows(store, "SELECT * FROM model_status WHERE model_id = ?", [model_id]),
            schema=MODEL_STATUS,
        )
        decided = reviews.decisions([key for key, _ in reviewed or ()])
        listing = listing_status(versions, decided, sticky_suspensions(previous, versions))
        found = listing.row(0, named=True)
        same = previous.filter(pl.col("status") == found["status"])
        found["since"] = same["since"].item() if same.height else None
        return ModelView(state, latest, found)

    store: ServingStore = request.app.state.store
    return _VIEWS.lookup(store, (state, reviewed), compute)


_PAID: SnapshotCache[pl.DataFrame] = SnapshotCache(max_entries=4096)


def paid_access(
    request: Request, user: str, now: dt.datetime, model_id: str | None = None
) -> list[dict[str, Any]]:
    """The caller's paid subscriptions that give access at ``now`` (``domain.money.subscriptions.access``),
    from the serving snapshot, of one model or all, by model id."""
    sql = "SELECT * FROM subscriptions WHERE user_id = ? AND NOT starts_with(subscription_id, 'free:')"
    params: list[Any] = [user]
    if model_id is not None:
        sql += " AND model_id = ?"
        params.append(model_id)
    store: ServingStore = request.app.state.store

    def rows() -> pl.DataFrame:
        found = snapshot_rows(store, sql + " ORDER BY model_id, subscription_id", params)
        if not found:
            return pl.DataFrame(schema=SUBSCRIPTIONS)
        # conform: a snapshot published before a column existed still answers
        return conform(pl.DataFrame(found, infer_schema_length=None), SUBSCRIPTIONS)

    return with_access(_PAID.lookup(store, (user, model_id), rows), now).to_dicts()


def subscribed(request: Request, user: str, model_id: str, now: dt.datetime) -> bool:
    """Whether the caller holds a subscription with access to the model at ``now``, paid (the
    snapshot, cached) or free (the inbox, read only when there is no paid one)."""
    if paid_access(request, user, now, model_id):
        return True
    store: SubscriptionStore = request.app.state.subscriptions
    free = store.state(user, model_id)
    return free is not None and free.active


def access_since(request: Request, user: str, model_id: str, now: dt.datetime) -> dt.datetime | None:
    """When the caller's access to the model began, over their subscriptions that give access at
    ``now`` (paid from the snapshot, a trial's start included; free from the inbox); None without
    access."""
    starts = [row["start_date"] for row in paid_access(request, user, now, model_id) if row["start_date"]]
    store: SubscriptionStore = request.app.state.subscriptions
    free = store.state(user, model_id)
    if free is not None and free.active:
        starts.append(free.started_at)
    return min(starts, default=None)


def not_found(model_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no model with id {model_id!r}")


def may_read(request: Request, view: ModelView, user: str, now: dt.datetime) -> bool:
    """``can_read`` with the caller's subscription, looked up only where it decides (a paid model
    that is public and active, owned by someone else)."""
    row = view.row
    decides = row["owner_user_id"] != user and row["public"] and row["status"] == "active"
    paid_reader = decides and row["price_cents"] > 0 and subscribed(request, user, row["model_id"], now)
    return can_read(row, user, {row["model_id"]} if paid_reader else set())


def readable(request: Request, model_id: str, user: str, now: dt.datetime) -> ModelView:
    """The model if the caller may read it at ``now``, else a 404."""
    view = load_view(request, model_id)
    if view is None or not may_read(request, view, user, now):
        raise not_found(model_id)
    return view


def browsable(request: Request, model_id: str, user: str, now: dt.datetime) -> ModelView:
    """The model if it is listed or the caller may read it at ``now``, else a 404."""
    view = load_view(request, model_id)
    if view is None or not (view.status == "listed" or may_read(request, view, user, now)):
        raise not_found(model_id)
    return view
