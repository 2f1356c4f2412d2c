"""Follows and notification channels (issue 16): follow a creator, register webhook endpoints, choose
which notifications go where.

Every write is an inbox object (``stores/follows.py``, ``stores/notify.py``): a follow reaches the
``follows`` table through its sensor, and the pipeline's delivery run (``services/notify.py``) reads
endpoints and preferences straight from the inbox, so a change counts from the next delivery on.
Registering an endpoint never calls it: URLs are checked by their form here (and, in production, by
the addresses their host resolves to), and the delivery run checks them again before each send.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import CurrentUser, current_user
from api.clock import Now
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from domain.marketplace.notify import MAX_URL_LENGTH, Preferences
from domain.models.registry import UnusableUserIdError, check_user_id
from services.notify import check_webhook_url
from stores.follows import FollowStore
from stores.layout import webhook_channel
from stores.notify import Endpoint, NotifyStore

MAX_ENDPOINTS = 5
"""Webhook endpoints a user may have at once."""

_COMMON = {status: ERROR_RESPONSES[status] for status in (401, 422, 500)}
_BAD_USER = {400: {"model": ErrorBody, "description": "The caller's user id cannot hold inbox objects."}}
follows_router = APIRouter(
    prefix="/creators", tags=["notifications"], dependencies=[Depends(current_user)], responses=_COMMON
)
router = APIRouter(
    prefix="/me", tags=["notifications"], dependencies=[Depends(current_user)], responses=_COMMON
)

CreatorId = Annotated[
    str, Path(max_length=64, description="The creator's user id (the owner part of model ids).")
]
EndpointId = Annotated[
    str, Path(pattern=r"^wh_[0-9a-f]{16}$", description="A webhook endpoint id, `wh_` and 16 hex digits.")
]


def _checked(user_id: str) -> str:
    try:
        return check_user_id(user_id)
    except UnusableUserIdError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


# ---- follows -------------------------------------------------------------------------------------


class Follow(BaseModel):
    creator_id: str
    following: bool
    since: dt.datetime | None = Field(
        description="When the caller last followed or unfollowed; null: never followed."
    )


_CREATOR = {
    404: {"model": ErrorBody, "description": "`creator_not_found`: no user can have that id."},
    409: {"model": ErrorBody, "description": "`cannot_follow_self`: one's own models need no follow."},
}


def _creator(user: str, creator_id: str) -> str:
    try:
        check_user_id(creator_id)
    except UnusableUserIdError:
        raise ApiError(404, "creator_not_found", f"no creator {creator_id!r}") from None
    if creator_id == user:
        raise ApiError(409, "cannot_follow_self", "one's own models need no follow")
    return creator_id


def _follow(event: dict) -> Follow:
    at = event.get("at")
    return Follow(
        creator_id=event["creator_id"],
        following=event["action"] == "follow",
        since=dt.datetime.fromisoformat(at) if at else None,
    )


@follows_router.post(
    "/{creator_id}/follow",
    status_code=201,
    summary="Follow a creator",
    responses={
        200: {"model": Follow, "description": "Already following: nothing changed."},
        **_BAD_USER,
        **_CREATOR,
    },
)
def follow_creator(
    creator_id: CreatorId, user: CurrentUser, request: Request, response: Response, now: Now
) -> Follow:
    """Hear of every model the creator newly lists (`new_public_model` notifications). Idempotent."""
    store = FollowStore(request.app.state.lake)
    creator = _creator(_checked(user), creator_id)
    before = store.latest(user, creator)
    event = store.change(user, creator, "follow", now)
    if before is not None and before["action"] == "follow":
        response.status_code = 200
    return _follow(event)


@follows_router.delete(
    "/{creator_id}/follow", summary="Stop following a creator", responses={**_BAD_USER, **_CREATOR}
)
def unfollow_creator(creator_id: CreatorId, user: CurrentUser, request: Request, now: Now) -> Follow:
    """Idempotent: unfollowing a creator one does not follow changes nothing."""
    store = FollowStore(request.app.state.lake)
    return _follow(store.change(user, _creator(_checked(user), creator_id), "unfollow", now))


@router.get("/following", summary="The creators the caller follows", responses=_BAD_USER)
def following(user: CurrentUser, request: Request) -> list[str]:
    return FollowStore(request.app.state.lake).following(_checked(user))


# ---- webhook endpoints ---------------------------------------------------------------------------


class NewWebhook(BaseModel):
    url: str = Field(max_length=MAX_URL_LENGTH, description="An `https://` URL that accepts POSTed JSON.")


class WebhookCreated(BaseModel):
    endpoint_id: str
    url: str
    created_at: dt.datetime
    secret: str = Field(
        description="The signing secret, shown this once. Each delivery carries `OddsForge-Signature: "
        "t={unix time},v1={hex HMAC-SHA256(secret, '{t}.{body}')}` and an `Idempotency-Key` to dedupe on."
    )


class DeadLetter(BaseModel):
    notification_id: str
    attempts: int
    last_error: str
    dead_at: dt.datetime


class WebhookState(BaseModel):
    endpoint_id: str
    url: str
    created_at: dt.datetime
    delivered: int = Field(description="Notifications this endpoint accepted (a 2xx answer).")
    pending: int = Field(description="Notifications still being retried (exponential backoff, 24 hours).")
    dead_letters: list[DeadLetter] = Field(description="Notifications given up after 24 hours of failures.")
    last_error: str | None = Field(description="What the latest failed attempt got, if any.")


_URL_REFUSED = {
    422: {
        "model": ErrorBody,
        "description": "`webhook_url_refused` (the URL's form or address is not allowed: HTTPS to a public "
        "address) or an invalid body.",
    },
    409: {"model": ErrorBody, "description": f"`too_many_webhooks`: at most {MAX_ENDPOINTS} endpoints."},
}


@router.post(
    "/webhooks",
    status_code=201,
    summary="Register a webhook endpoint",
    responses={**_BAD_USER, **_URL_REFUSED},
)
async def register_webhook(
    body: Annotated[NewWebhook, Body()], user: CurrentUser, request: Request, now: Now
) -> WebhookCreated:
    """Notifications the caller's preferences send to `webhook` are POSTed here, signed. Nothing is
    sent to the URL now."""
    _checked(user)
    settings = request.app.state.settings
    problem = await run_in_threadpool(
        check_webhook_url, body.url, settings.webhook_policy, request.app.state.resolver
    )
    if problem is not None:
        raise ApiError(422, "webhook_url_refused", problem)
    store = NotifyStore(request.app.state.lake)
    if len(await run_in_threadpool(store.endpoints, user)) >= MAX_ENDPOINTS:
        raise ApiError(
            409, "too_many_webhooks", f"at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
        )
    endpoint = await run_in_threadpool(
        store.register, user, f"wh_{secrets.token_hex(8)}", body.url, f"whsec_{secrets.token_hex(24)}", now
    )
    return WebhookCreated(
        endpoint_id=endpoint.endpoint_id,
        url=endpoint.url,
        created_at=endpoint.created_at,
        secret=endpoint.secret,
    )


def _state(store: NotifyStore, endpoint: Endpoint) -> WebhookState:
    deliveries = store.deliveries(endpoint.user_id, webhook_channel(endpoint.endpoint_id)).values()
    delivered = [d for d in deliveries if any(a.ok for a in d.attempts)]
    dead = [d for d in deliveries if d.dead is not None]
    failures = sorted((a.at, a.detail) for d in deliveries for a in d.attempts if a.ok is False)
    return WebhookState(
        endpoint_id=endpoint.endpoint_id,
        url=endpoint.url,
        created_at=endpoint.created_at,
        delivered=len(delivered),
        pending=len(deliveries) - len(delivered) - len(dead),
        dead_letters=[
            DeadLetter(
                notification_id=d.dead["notification_id"],
                attempts=d.dead["attempts"],
                last_error=d.dead["last_error"],
                dead_at=dt.datetime.fromisoformat(d.dead["dead_at"]),
            )
            for d in sorted(dead, key=lambda d: d.dead["dead_at"])  # type: ignore[index]
            if d.dead is not None
        ],
        last_error=failures[-1][1] if failures else None,
    )


@router.get("/webhooks", summary="The caller's webhook endpoints and their deliveries", responses=_BAD_USER)
def list_webhooks(user: CurrentUser, request: Request) -> list[WebhookState]:
    """Each endpoint with its delivered and pending counts and its dead letters (secrets are not shown)."""
    store = NotifyStore(request.app.state.lake)
    return [_state(store, e) for e in store.endpoints(_checked(user))]


@router.delete(
    "/webhooks/{endpoint_id}",
    status_code=204,
    summary="Remove a webhook endpoint",
    responses={**_BAD_USER, 404: {"model": ErrorBody, "description": "The caller has no such endpoint."}},
)
def delete_webhook(endpoint_id: EndpointId, user: CurrentUser, request: Request, now: Now) -> Response:
    """Nothing more is sent to it, retries included."""
    if not NotifyStore(request.app.state.lake).remove(_checked(user), endpoint_id, now):
        raise ApiError(404, "not_found", f"no webhook endpoint {endpoint_id}")
    return Response(status_code=204)


# ---- preferences ---------------------------------------------------------------------------------


@router.get(
    "/notification-preferences", summary="Which notifications go to which channel", responses=_BAD_USER
)
def get_preferences(user: CurrentUser, request: Request) -> Preferences:
    """Until set: every kind on every channel (email once an address is given)."""
    return NotifyStore(request.app.state.lake).preferences(_checked(user))[0]


@router.put(
    "/notification-preferences", summary="Choose which notifications go to which channel", responses=_BAD_USER
)
def put_preferences(
    body: Annotated[Preferences, Body()], user: CurrentUser, request: Request, now: Now
) -> Preferences:
    """Replaces the preferences whole; a kind left out of `kinds` is delivered nowhere."""
    return NotifyStore(request.app.state.lake).set_preferences(_checked(user), body, now)
