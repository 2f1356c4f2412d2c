"""Follows and delivered notifications (issue 16): who hears about what, on which channel, and when a
failed delivery is tried again. Pure: frames, plain values and the caller's clock in, decisions out.

Notifications are rows of :data:`domain.marketplace.listing.NOTIFICATIONS`. Besides the marketplace's
own (a new version, a suspension, an archive) a follower hears of a followed creator's newly listed
model (:func:`new_public_model_notifications`) and a subscriber gets one digest per day of the new
picks of the models they subscribe to (:func:`pick_digests`).

Each notification is delivered once per channel: to each of the user's webhook endpoints and by email.
A delivery is a numbered series of attempts (:class:`Attempt`); :func:`next_step` decides from them
whether to send now, wait, or give up: exponential backoff from :data:`FIRST_RETRY` doubling up to
:data:`MAX_RETRY`, each delay scaled by a jitter in [0.5, 1] drawn from a digest of the delivery and
attempt (so every run computes the same due time without storing it), for :data:`DELIVERY_WINDOW`
after the first attempt; then the delivery is dead-lettered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from domain.marketplace.listing import MODEL_STATUS, NOTIFICATIONS
from domain.tables.schemas import UTC_TS, conform

NotifyKind = Literal["new_version", "suspended", "archived", "new_public_model", "daily_picks"]
ChannelKind = Literal["webhook", "email"]
NOTIFY_KINDS: tuple[NotifyKind, ...] = (
    "new_version",
    "suspended",
    "archived",
    "new_public_model",
    "daily_picks",
)
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("webhook", "email")

FIRST_RETRY = dt.timedelta(seconds=30)
MAX_RETRY = dt.timedelta(hours=1)
DELIVERY_WINDOW = dt.timedelta(hours=24)
"""Retries stop this long after the first attempt; the delivery is then dead-lettered."""
ATTEMPT_LEASE = dt.timedelta(minutes=10)
"""An attempt recorded without a result for this long lost its process (a killed run): it counts as
failed and the delivery is tried again, under the same idempotency key."""
DIGEST_DAYS = 1
"""Pick digests are made for game dates at most this many days from the run's clock, so a backfill
of history notifies nobody."""

FOLLOWS: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "creator_id": pl.String(),
    "following": pl.Boolean(),
    "changed_at": UTC_TS,
    "n": pl.Int32(),
}
"""One row per (follower, creator): the state of the follower's latest follow or unfollow."""


# ---- follows -------------------------------------------------------------------------------------


def fold_follows(previous: pl.DataFrame | None, events: Sequence[dict]) -> pl.DataFrame:
    """The ``follows`` table: ``previous`` (None for a full rebuild) updated with follow events
    (``{"user_id", "creator_id", "action", "at", "n"}``); the greatest ``n`` per pair wins, so folding
    the same events again gives the same table."""
    before = pl.DataFrame(schema=FOLLOWS) if previous is None else conform(previous, FOLLOWS)
    rows = [
        {
            "user_id": e["user_id"],
            "creator_id": e["creator_id"],
            "following": e["action"] == "follow",
            "changed_at": dt.datetime.fromisoformat(e["at"]),
            "n": e["n"],
        }
        for e in events
    ]
    both = pl.concat([before, pl.DataFrame(rows, schema=FOLLOWS)])
    return both.sort("n").group_by("user_id", "creator_id").last().sort("user_id", "creator_id")


def new_public_model_notifications(
    previous: pl.DataFrame, current: pl.DataFrame, follows: pl.DataFrame, now: dt.datetime
) -> pl.DataFrame:
    """:data:`NOTIFICATIONS` to every follower of a creator whose model was listed for the first time
    between two :data:`MODEL_STATUS` tables (never on the first run, which has nothing to compare)."""
    before = conform(previous, MODEL_STATUS)
    if before.height == 0:
        return pl.DataFrame(schema=NOTIFICATIONS)
    was = before.select("model_id", pl.col("status").alias("_was"))
    listed_before = pl.col("_was").is_in(["listed", "suspended"]).fill_null(False)
    new = (
        conform(current, MODEL_STATUS)
        .join(was, on="model_id", how="left")
        .filter((pl.col("status") == "listed") & ~listed_before)
    )
    followers = conform(follows, FOLLOWS).filter("following").select("user_id", "creator_id")
    out = new.join(followers, left_on="owner_user_id", right_on="creator_id").with_columns(
        pl.lit("new_public_model").alias("kind"),
        pl.format("{} published a new model: {} ({})", "owner_user_id", "name", "sport").alias("message"),
        pl.format("new_public_model:{}:v{}:{}", "model_id", "version", "user_id").alias("notification_id"),
        pl.lit(now).cast(UTC_TS).alias("created_at"),
    )
    return conform(out, NOTIFICATIONS).sort("notification_id")


def pick_digests(
    picks: pl.DataFrame, subscribers: pl.DataFrame, day: dt.date, already: Iterable[str], now: dt.datetime
) -> pl.DataFrame:
    """One ``daily_picks`` notification per subscriber with new picks on ``day``: ``picks`` are the
    day's qualifying analyses (``model_id``, ``name``, ``game_id``), ``subscribers`` the
    ``(model_id, user_id)`` pairs with access, ``already`` the users who had their digest of the day.
    A day further than :data:`DIGEST_DAYS` from ``now`` gives none."""
    if abs((day - now.date()).days) > DIGEST_DAYS or picks.height == 0:
        return pl.DataFrame(schema=NOTIFICATIONS)
    per_model = picks.group_by("model_id", "name").agg(pl.col("game_id").n_unique().alias("n"))
    rows = (
        per_model.join(subscribers.select("model_id", "user_id"), on="model_id")
        .filter(~pl.col("user_id").is_in(list(already)))
        .sort("user_id", "name")
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("n").sum().alias("total"), pl.format("{} ({})", "name", "n").alias("parts"))
    )
    out = rows.with_columns(
        pl.lit("daily_picks").alias("kind"),
        pl.format(
            "{} new picks for {} from the models you subscribe to: {}",
            "total",
            pl.lit(day.isoformat()),
            pl.col("parts").list.join(", "),
        ).alias("message"),
        pl.format("daily_picks:{}:{}", pl.lit(day.isoformat()), "user_id").alias("notification_id"),
        pl.lit(now).cast(UTC_TS).alias("created_at"),
    )
    return conform(out, NOTIFICATIONS).sort("notification_id")


# ---- preferences ---------------------------------------------------------------------------------


class Preferences(BaseModel):
    """Which kinds of notification a user receives on which channel, and where email goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s<>,;]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,24}$",
        description="Where email notifications go; none: no email.",
    )
    kinds: dict[NotifyKind, list[ChannelKind]] = Field(
        default_factory=lambda: {kind: list(CHANNEL_KINDS) for kind in NOTIFY_KINDS},
        description="Kind -> the channels it is delivered on; a kind left out is delivered nowhere.",
    )

    def wants(self, kind: str, channel: ChannelKind) -> bool:
        return channel in self.kinds.get(kind, [])  # type: ignore[call-overload]


# ---- webhook addresses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookPolicy:
    """Where webhooks may be sent: HTTPS only in production, to public addresses only (no request
    forgery into the platform's own network); plain HTTP to a loopback address only when an operator
    allows it (tests, the demo)."""

    production: bool = False
    loopback_http: bool = False


MAX_URL_LENGTH = 2048


def url_problem(url: str, policy: WebhookPolicy) -> str | None:
    """Why ``url`` cannot be a webhook endpoint under ``policy`` before any name is resolved; None
    when it may be (then :func:`address_problem` judges the addresses it resolves to)."""
    if len(url) > MAX_URL_LENGTH:
        return f"a webhook URL may have at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "a webhook URL is https://host/path"
    if parts.username is not None or parts.password is not None:
        return "a webhook URL may not carry credentials"
    if parts.scheme == "http":
        if policy.production or not policy.loopback_http:
            return "webhooks are sent over HTTPS only"
        if not _is_loopback_name(parts.hostname):
            return "plain HTTP is allowed only to a loopback address (127.0.0.1, ::1, localhost)"
    return None


def _is_loopback_name(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_problem(
    addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address], scheme: str, policy: WebhookPolicy
) -> str | None:
    """Why the addresses a webhook's host resolves to may not be called; every one is checked, since
    the sender may connect to any of them."""
    if not addresses:
        return "the webhook's host does not resolve"
    if scheme == "http" and not all(a.is_loopback for a in addresses):
        return "plain HTTP is allowed only to a loopback address"
    if policy.production and (private := [str(a) for a in addresses if not a.is_global]):
        return f"the webhook's host resolves to a private or reserved address ({', '.join(private)})"
    return None


# ---- delivery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """Attempt ``n`` of one delivery, started ``at``; ``ok`` None until its result is recorded."""

    n: int
    at: dt.datetime
    ok: bool | None = None
    detail: str = ""


@dataclass(frozen=True)
class Step:
    action: Literal["send", "wait", "delivered", "dead"]
    attempt: int
    """The attempt to make (``send``) or the last one made."""
    due: dt.datetime | None = None
    """When the next attempt is due (``wait``)."""


def retry_delay(delivery_key: str, attempt: int) -> dt.timedelta:
    """The wait after failed attempt ``attempt`` (1-based): ``FIRST_RETRY * 2**(attempt-1)`` capped at
    :data:`MAX_RETRY`, times a jitter in [0.5, 1] drawn from the delivery and attempt."""
    base = min(FIRST_RETRY * 2 ** min(attempt - 1, 32), MAX_RETRY)
    draw = int(hashlib.sha256(f"{delivery_key}:{attempt}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return base * (0.5 + 0.5 * draw)


def next_step(delivery_key: str, attempts: Sequence[Attempt], now: dt.datetime) -> Step:
    """What to do now about a delivery that made ``attempts`` (any order). An attempt without result
    younger than :data:`ATTEMPT_LEASE` is in flight; older, it failed (its process died)."""
    if not attempts:
        return Step("send", 1)
    done = sorted(attempts, key=lambda a: a.n)
    if any(a.ok for a in done):
        return Step("delivered", max(a.n for a in done if a.ok))
    last = done[-1]
    if last.ok is None and now < last.at + ATTEMPT_LEASE:
        return Step("wait", last.n, last.at + ATTEMPT_LEASE)
    due = last.at + retry_delay(delivery_key, last.n)
    if due > done[0].at + DELIVERY_WINDOW:
        return Step("dead", last.n)
    return Step("send", last.n + 1) if now >= due else Step("wait", last.n, due)


def delivery_key(notification_id: str, channel: str) -> str:
    """The idempotency key of one notification on one channel (``webhook:{endpoint}`` or ``email``):
    what the receiver dedupes on and what names the delivery's records."""
    return "ntf_" + hashlib.sha256(f"{notification_id}\n{channel}".encode()).hexdigest()[:32]
