"""The marketplace: browse listed models, subscribe, unsubscribe, list one's subscriptions, and read
one's notifications (the seed's "Model Marketplace" endpoints).

Listings come from the serving snapshot: ``model_status`` says which models are listed (public,
reviewed when paid, not suspended) and the dbt marts give their rolling figures (``leaderboard``)
and subscriber counts (``model_subscribers``). Free subscriptions are events in the inbox, so a
subscriber sees their change at once; paid ones start with a Stripe Checkout Session
(``services.paid_subscriptions``) and their state follows Stripe's webhooks into the ``subscriptions``
table, where ``domain.money.subscriptions.access`` decides at the request's time who reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

import duckdb
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth import CurrentUser, current_user
from api.clock import Now
from api.compliance import PICKS_RESPONSES, Disclaimed, DisclaimedPage, PicksUser
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.idempotency import Idempotent
from api.pagination import Page, Pagination, decode_cursor, invalid_cursor, page_of
from api.payments import get_payments, stripe_reachable
from api.routes.execution import CalibrationBin, EdgeFigures, Figures, performance_report
from api.routes.games import SportKey, UtcDatetime
from api.serving import Store
from api.snapshot_cache import SnapshotCache
from api.visibility import browsable, load_view, not_found, paid_access, snapshot_rows, subscribed
from domain.marketplace.listing import ListingStatus
from domain.marketplace.notify import NotifyKind
from domain.models.registry import UnusableUserIdError
from domain.money.subscriptions import Status as SubscriptionStatus
from services import paid_subscriptions
from stores.subscriptions import FreeSubscription, SubscriptionStore
from stores.warehouse import LISTING_TABLE

router = APIRouter(
    prefix="/marketplace",
    tags=["marketplace"],
    dependencies=[Depends(current_user)],
    responses=ERROR_RESPONSES,
)
notifications_router = APIRouter(
    tags=["marketplace"], dependencies=[Depends(current_user)], responses=ERROR_RESPONSES
)

_NOT_FOUND = {404: {"model": ErrorBody, "description": "No such model, or not one the caller may see."}}
ModelId = Annotated[str, Path(max_length=128, description="Model id, e.g. `user123--momentum-3fa9c1`.")]
Sort = Literal["score", "roi", "subscribers", "rating", "ratings"]


# ---- listings -----------------------------------------------------------------------------------


class MarketplaceModel(EdgeFigures):
    """A listed model with its rolling 30-day figures (the seed's shared models index)."""

    model_id: str
    version: int
    name: str
    description: str | None
    creator_id: str
    sport: str
    bet_type: str
    market: str
    price_cents: int = Field(description="Monthly price in cents; 0 = free.")
    trial_days: int
    rank: int = Field(description="Rank within sport and bet type (established models first).")
    established: bool = Field(description="At least 50 graded picks in the window.")
    graded: int = Field(description="Wins and losses in the window (pushes are refunded and left out).")
    wins: int
    accuracy: float | None
    roi: float | None = Field(description="Profit per unit risked in the window; null without graded picks.")
    units: float
    profit: float
    brier: float | None
    as_of: dt.date | None = Field(description="Last day of the rolling window; null before any result.")
    subscribers: int = Field(
        description="Subscriptions that give access: trial, active, or past_due in its 3 grace days."
    )
    backtests: int = Field(
        description="Backtests the creator recorded on the model across its versions and drafts (one per "
        "version or draft and span) plus the configurations its tuning runs tried: a record found after "
        "many tries means less than one found after a few."
    )
    rating_mean: float | None = Field(
        description="Users' mean stars over visible reviews (2 decimals); null without any."
    )
    ratings: int = Field(description="Users' visible reviews.")
    listed_since: UtcDatetime | None


_SORTS: dict[Sort, list[tuple[str, Callable[[str], Any]]]] = {
    "score": [
        ("-CAST(established AS INTEGER)", int),
        ("-CAST(graded > 0 AS INTEGER)", int),
        ("-performance_score", float),
        ("coalesce(-roi, 1e308)", float),
        ("model_id", str),
    ],
    "roi": [("coalesce(-roi, 1e308)", float), ("-performance_score", float), ("model_id", str)],
    "subscribers": [("-subscribers", int), ("-performance_score", float), ("model_id", str)],
    "rating": [("coalesce(-rating_mean, 1e308)", float), ("-ratings", int), ("model_id", str)],
    "ratings": [("-ratings", int), ("coalesce(-rating_mean, 1e308)", float), ("model_id", str)],
}
"""Sort keys, all ascending (descending ones negated; no ROI sorts last), model id last for a total
order; a page cursor holds the last item's keys."""


def _sort_key(row: dict[str, Any], n: int) -> tuple[str, ...]:
    """A row's sort keys as cursor strings (``repr`` keeps floats exact)."""
    return tuple(repr(v) if isinstance(v, float) else str(v) for v in (row[f"_k{i}"] for i in range(n)))


def _listing(row: dict[str, Any]) -> MarketplaceModel:
    return MarketplaceModel(**{k: v for k, v in row.items() if not k.startswith("_k")})


_PAGES: SnapshotCache[DisclaimedPage[MarketplaceModel]] = SnapshotCache()
"""Listing pages of the current snapshot: the same page is computed once per snapshot."""


@router.get("/models", summary="Browse listed models")
def list_marketplace(
    store: Store,
    page: Pagination,
    sport: Annotated[SportKey | None, Query(description="Only this sport.")] = None,
    bet_type: Annotated[Literal["game", "player"] | None, Query(description="Only this bet type.")] = None,
    market: Annotated[
        Literal["h2h", "spreads", "totals"] | None, Query(description="Only this market.")
    ] = None,
    price: Annotated[Literal["free", "paid"] | None, Query(description="Free or paid models only.")] = None,
    max_price_cents: Annotated[int | None, Query(ge=0, description="At most this monthly price.")] = None,
    sort: Annotated[
        Sort,
        Query(
            description="`score` (default), `roi`, `subscribers`, users' mean `rating` or number of "
            "`ratings`, best first."
        ),
    ] = "score",
) -> DisclaimedPage[MarketplaceModel]:
    """Listed models (public, reviewed when paid, not suspended), best first: by performance score
    (models with 50 graded picks in the rolling 30 days first, then the edge lower bound, ties by
    ROI; models without graded picks last), by ROI, by subscribers, or by users' ratings (the mean
    stars of visible reviews, then their count; unrated models last) or their count."""
    keys = _SORTS[sort]
    select = ", ".join(f"{expr} AS _k{i}" for i, (expr, _) in enumerate(keys))
    where, params = ["true"], []
    for column, value in (("sport", sport and sport.value), ("bet_type", bet_type), ("market", market)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if price is not None:
        where.append("price_cents = 0" if price == "free" else "price_cents > 0")
    if max_price_cents is not None:
        where.append("price_cents <= ?")
        params.append(max_price_cents)
    if page.cursor is not None:
        after = decode_cursor(page.cursor, arity=len(keys))
        try:
            params += [cast(value) for (_, cast), value in zip(keys, after, strict=True)]
        except ValueError:
            raise invalid_cursor() from None
        names = ", ".join(f"_k{i}" for i in range(len(keys)))
        where.append(f"({names}) > ({', '.join('?' * len(keys))})")
    order = ", ".join(f"_k{i}" for i in range(len(keys)))
    sql = (
        f"SELECT * FROM (SELECT *, {select} FROM {LISTING_TABLE}) "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?"
    )

    def compute() -> DisclaimedPage[MarketplaceModel]:
        try:
            with store.cursor() as cur:
                result = cur.execute(sql, [*params, page.limit + 1])
                names = [d[0] for d in result.description]
                rows = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
        except duckdb.CatalogException:  # a snapshot published before the marketplace tables existed
            rows = []
        listed = page_of(rows, page.limit, key=lambda row: _sort_key(row, len(keys)))
        return DisclaimedPage[MarketplaceModel](
            items=[_listing(r) for r in listed.items], next_cursor=listed.next_cursor, limit=listed.limit
        )

    return _PAGES.lookup(store, (sql, tuple(params), page.limit), compute)


class MarketplaceDetail(Disclaimed):
    """A model's marketplace page."""

    model_id: str
    version: int
    name: str
    description: str | None
    creator_id: str
    sport: str
    bet_type: str
    market: str
    price_cents: int
    trial_days: int
    status: ListingStatus
    status_reason: str | None
    status_since: UtcDatetime | None
    listing: MarketplaceModel | None = Field(description="Rank and rolling figures while listed.")
    record: Figures | None = Field(description="The latest version's figures over the last 90 days.")
    rolling: Figures | None = Field(description="The latest version's rolling 30 days.")
    calibration: list[CalibrationBin]
    subscribed: bool = Field(description="The caller holds a subscription with access.")


@router.get("/models/{model_id}", summary="A model's marketplace page", responses=_NOT_FOUND)
def marketplace_model(model_id: ModelId, user: CurrentUser, request: Request, now: Now) -> MarketplaceDetail:
    """Price, trial, listing status, rank and rolling figures, the record of the last 90 days and
    the calibration table. Listed models are open to everyone; an unlisted one only to those who may
    read it (its owner; subscribers while it is public and active)."""
    view = browsable(request, model_id, user, now)
    payload = view.latest.payload
    report = performance_report(request, view, None, 90, None, now)
    listed = snapshot_rows(
        request.app.state.store,
        f"SELECT * FROM {LISTING_TABLE} WHERE model_id = ? AND version = ?",
        [model_id, view.state.latest],
    )
    return MarketplaceDetail(
        model_id=model_id,
        version=view.state.latest,
        name=payload["name"],
        description=payload.get("description"),
        creator_id=payload["creator_user_id"],
        sport=payload["sport"],
        bet_type=payload["bet_type"],
        market=payload["market"],
        price_cents=payload["sharing"]["price_cents"],
        trial_days=payload["sharing"]["trial_days"],
        status=view.status,
        status_reason=view.listing["reason"],
        status_since=view.listing["since"],
        listing=_listing(listed[0]) if listed else None,
        record=report.window,
        rolling=report.rolling,
        calibration=report.calibration,
        subscribed=subscribed(request, user, model_id, now),
    )


# ---- subscriptions ------------------------------------------------------------------------------


class Subscription(BaseModel):
    """A user's subscription to a model (the seed's model subscriptions table)."""

    model_id: str
    creator_id: str | None
    kind: Literal["free", "paid"]
    status: SubscriptionStatus
    price_cents: int | None
    start_date: UtcDatetime | None
    trial_end: UtcDatetime | None = None
    past_due_since: UtcDatetime | None = Field(
        default=None,
        description="When the unpaid invoice was created (past_due only): access ends 3 days later.",
    )
    next_billing_date: UtcDatetime | None = None
    cancel_at_period_end: bool = False
    subscription_id: str | None = Field(default=None, description="Stripe's id for paid subscriptions.")


class SubscriptionRequest(BaseModel):
    model_id: str = Field(max_length=128, description="The model to subscribe to or leave.")


def _subscriptions(request: Request) -> SubscriptionStore:
    return request.app.state.subscriptions


def _free(sub: FreeSubscription) -> Subscription:
    return Subscription(
        model_id=sub.model_id,
        creator_id=sub.creator_id,
        kind="free",
        status="active" if sub.active else "cancelled",
        price_cents=0,
        start_date=sub.started_at,
    )


def _paid_row(row: dict[str, Any]) -> Subscription:
    return Subscription(
        model_id=row["model_id"],
        creator_id=row["creator_id"],
        kind="paid",
        status=row["status"],
        price_cents=row["price_cents"],
        start_date=row["start_date"],
        trial_end=row["trial_end"],
        past_due_since=row.get("past_due_since"),
        next_billing_date=row["current_period_end"],
        cancel_at_period_end=bool(row["cancel_at_period_end"]),
        subscription_id=row["subscription_id"],
    )


class Checkout(BaseModel):
    """A Stripe Checkout Session that starts a paid subscription: send the subscriber to
    ``checkout_url``; access begins once Stripe reports the subscription (trial or paid)."""

    model_id: str
    session_id: str = Field(description="Stripe's Checkout Session id.")
    checkout_url: str = Field(description="Stripe's hosted payment page for this session.")
    expires_at: UtcDatetime | None = Field(description="After this the session expires; subscribe again.")
    price_cents: int = Field(description="Monthly price in cents.")
    trial_days: int = Field(description="Free days before the first invoice (0: none).")


def _paid_cancelled(answer: dict[str, Any]) -> Subscription:
    """A Stripe subscription set to end with its period, as ``services.paid_subscriptions`` reports it."""
    return Subscription(
        model_id=answer["model_id"],
        creator_id=answer["creator_id"],
        kind="paid",
        status=answer["status"],
        price_cents=answer["price_cents"],
        start_date=None,
        cancel_at_period_end=bool(answer["cancel_at_period_end"]),
        subscription_id=answer["subscription_id"],
    )


def _stripe(request: Request) -> tuple[Any, Any]:
    """``services.paid_subscriptions`` and the app's Stripe client (503 ``payments_not_configured``
    without its secrets)."""
    return paid_subscriptions, get_payments(request)


_PAYMENTS = {
    503: {
        "model": ErrorBody,
        "description": "Paid models: Stripe is not configured here (`payments_not_configured`) or cannot "
        "be reached (`payments_unavailable`; retry after `Retry-After` seconds).",
    },
}


@router.post(
    "/subscribe",
    status_code=201,
    response_model=Subscription | Checkout,
    summary="Subscribe to a listed model",
    responses=_NOT_FOUND
    | _PAYMENTS
    | PICKS_RESPONSES
    | {
        200: {
            "description": "Free: already subscribed, the existing subscription. Paid: the open "
            "Checkout Session of an earlier request."
        },
        201: {"description": "Free: the new subscription. Paid: a new Stripe Checkout Session."},
        400: {"model": ErrorBody, "description": "The caller's user id cannot hold subscriptions."},
        409: {
            "model": ErrorBody,
            "description": "The model is suspended or the caller's own, or the caller's paid "
            "subscription to it is still live (manage it through `POST /billing/portal`).",
        },
    },
)
def subscribe(
    body: Annotated[SubscriptionRequest, Body()],
    user: PicksUser,
    request: Request,
    response: Response,
    now: Now,
    idem: Idempotent,
) -> Subscription | Checkout | Response:
    """Free models: the subscription starts at once (subscribing again returns it with 200). Paid
    models: a Stripe Checkout Session in subscription mode at the model's current price with its
    trial (`checkout_url`, `session_id`); access begins when Stripe reports the subscription, and
    subscribing again while the session is open returns it with 200. Suspended models take no new
    subscribers. The caller must be old enough where they are, in a region that is not blocked, and not
    self-excluded."""
    if idem.replay is not None:
        return idem.replay
    view = load_view(request, body.model_id)
    if view is None:
        raise not_found(body.model_id)
    row = view.row
    if row["owner_user_id"] == user:
        raise ApiError(409, "conflict", "you own this model: owners read their models without subscribing")
    if view.status == "suspended":
        raise ApiError(
            409,
            "conflict",
            f"model {body.model_id!r} is suspended ({view.listing['reason']}); it takes no new subscribers",
        )
    if view.status != "listed":
        raise not_found(body.model_id)
    if row["price_cents"] > 0:
        paid, payments = _stripe(request)
        settings = request.app.state.settings
        urls = (settings.checkout_success_url, settings.checkout_cancel_url)
        try:
            with stripe_reachable():
                answer = paid.start_checkout(request.app.state.lake, payments, user, row, now, urls)
        except paid.AlreadySubscribedError as exc:
            raise ApiError(409, "already_subscribed", str(exc)) from None
        response.status_code = 201 if answer["created"] else 200
        return idem.answer(Checkout(**answer))
    store = _subscriptions(request)
    before = store.state(user, body.model_id)
    try:
        sub = store.subscribe(user, body.model_id, row["owner_user_id"], now)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if before is not None and before.active:
        response.status_code = 200
    return idem.answer(_free(sub))


@router.delete(
    "/unsubscribe",
    summary="Leave a model",
    responses=_NOT_FOUND | _PAYMENTS,
)
def unsubscribe(
    body: Annotated[SubscriptionRequest, Body()], user: CurrentUser, request: Request, now: Now
) -> Subscription:
    """Free subscriptions end at once. Paid ones are cancelled at the end of the paid period (or of
    the trial); access continues until then."""
    store = _subscriptions(request)
    free = store.state(user, body.model_id)
    if free is not None and free.active:
        ended = store.unsubscribe(user, body.model_id, now)
        assert ended is not None
        return _free(ended)
    view = load_view(request, body.model_id)
    if view is not None and (view.row["price_cents"] > 0 or paid_access(request, user, now, body.model_id)):
        paid, payments = _stripe(request)
        try:
            with stripe_reachable():
                answer = paid.cancel_paid_subscription(
                    request.app.state.lake, payments, user, body.model_id, now
                )
        except paid.NoPaidSubscriptionError as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return _paid_cancelled(answer)
    raise ApiError(404, "not_found", f"you hold no subscription to model {body.model_id!r}")


@router.get("/subscriptions", summary="The caller's subscriptions")
def list_subscriptions(
    user: CurrentUser,
    request: Request,
    page: Pagination,
    now: Now,
    include_ended: Annotated[
        bool, Query(description="Also those without access now: cancelled, expired, past_due after 3 days.")
    ] = False,
) -> Page[Subscription]:
    """Free subscriptions as the caller last changed them, paid ones as Stripe last reported them,
    ordered by model id. Without `include_ended`, those that give access now: trial, active, and
    past_due for 3 days after the unpaid invoice."""
    free = [_free(s) for s in _subscriptions(request).of_user(user)]
    if include_ended:
        paid_rows = snapshot_rows(
            request.app.state.store,
            "SELECT * FROM subscriptions WHERE user_id = ? AND NOT starts_with(subscription_id, 'free:')",
            [user],
        )
    else:
        paid_rows = paid_access(request, user, now)
        free = [s for s in free if s.status == "active"]
    subs = [*free, *(_paid_row(r) for r in paid_rows)]
    subs.sort(key=lambda s: (s.model_id, s.kind))
    if page.cursor is not None:
        after = decode_cursor(page.cursor, arity=2)
        subs = [s for s in subs if (s.model_id, s.kind) > after]
    return page_of(subs[: page.limit + 1], page.limit, key=lambda s: (s.model_id, s.kind))


# ---- notifications ------------------------------------------------------------------------------


class Notification(BaseModel):
    notification_id: str
    model_id: str
    version: int
    kind: NotifyKind
    message: str
    created_at: UtcDatetime


@notifications_router.get("/notifications", summary="The caller's notifications, newest first")
def list_notifications(user: CurrentUser, store: Store, page: Pagination) -> Page[Notification]:
    """What the marketplace told the caller about models they subscribe to (new versions,
    suspensions, archives) and creators they follow (newly listed models): the outbox the delivery
    run sends to the caller's webhooks and email (`/me/webhooks`, `/me/notification-preferences`)."""
    sql = (
        "SELECT notification_id, model_id, version, kind, message, created_at "
        "FROM notifications WHERE user_id = ?"
    )
    params: list[Any] = [user]
    if page.cursor is not None:
        at, after_id = decode_cursor(page.cursor, arity=2)
        try:
            params += [dt.datetime.fromisoformat(at), after_id]
        except ValueError:
            raise invalid_cursor() from None
        sql += " AND (created_at, notification_id) < (?, ?)"
    sql += " ORDER BY created_at DESC, notification_id DESC LIMIT ?"
    try:
        with store.cursor() as cur:
            result = cur.execute(sql, [*params, page.limit + 1])
            names = [d[0] for d in result.description]
            rows = [Notification(**dict(zip(names, r, strict=True))) for r in result.fetchall()]
    except duckdb.CatalogException:
        rows = []
    return page_of(rows, page.limit, key=lambda n: (n.created_at.isoformat(), n.notification_id))
