"""Delivering notifications: each outbox row to each of its user's channels (webhook endpoints,
email), once per channel, with retries (``domain.marketplace.notify``: backoff, dead letters).

A delivery's attempt is recorded before it is sent and its result after (``stores/notify.py``), so a
re-run never sends an attempt twice. The one window left is a crash after the receiver got the
message and before its result was recorded: the attempt's lease ends and it is sent again, with the
same ``Idempotency-Key`` (webhooks; ``Message-ID`` for email) for the receiver to drop.

Webhooks are signed like Stripe's (:func:`stores.stripe_events.sign_payload`):
``OddsForge-Signature: t={unix time},v1={hex HMAC-SHA256(secret, "{t}.{body}")}``; receivers check it
with :func:`verify_signature`. Their URLs are checked when registered and again before each send
(:func:`check_webhook_url`): in production the host's every address must be public.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import json
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import polars as pl

from domain.marketplace.listing import NOTIFICATIONS
from domain.marketplace.notify import (
    DELIVERY_WINDOW,
    ChannelKind,
    Preferences,
    WebhookPolicy,
    address_problem,
    delivery_key,
    next_step,
    url_problem,
)
from domain.tables.schemas import conform
from services.mail import Mailer
from stores.lake import Lake
from stores.layout import pick_digests_key, table_key, webhook_channel
from stores.notify import Delivery, Endpoint, NotifyStore
from stores.stripe_events import sign_payload

SIGNATURE_HEADER = "OddsForge-Signature"
EVENT_ID_HEADER = "OddsForge-Event-Id"
SIGNATURE_TOLERANCE_SECONDS = 300
SEND_TIMEOUT_SECONDS = 10.0
EMAIL_CHANNEL = "email"

PRODUCTION_ENV = "ODDSFORGE_ENV"
LOOPBACK_HTTP_ENV = "ODDSFORGE_WEBHOOK_LOOPBACK_HTTP"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[Address]]


def webhook_policy_from_env(env: Mapping[str, str] | None = None) -> WebhookPolicy:
    """``ODDSFORGE_ENV=production`` (HTTPS to public addresses only) and the operator's
    ``ODDSFORGE_WEBHOOK_LOOPBACK_HTTP=1`` (plain HTTP to loopback, for tests and the demo; refused in
    production): one reading for the API and the pipeline."""
    env = os.environ if env is None else env
    production = env.get(PRODUCTION_ENV) == "production"
    loopback = env.get(LOOPBACK_HTTP_ENV, "") in ("1", "true", "yes")
    if production and loopback:
        raise ValueError(f"{LOOPBACK_HTTP_ENV} is for development only, not with {PRODUCTION_ENV}=production")
    return WebhookPolicy(production=production, loopback_http=loopback)


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (raises :class:`OSError` when it does not)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}, key=str)


def check_webhook_url(url: str, policy: WebhookPolicy, resolver: Resolver = resolve) -> str | None:
    """Why ``url`` may not receive webhooks; None when it may. In production its host is resolved and
    every address checked; elsewhere nothing is resolved (the rules then need no lookup)."""
    problem = url_problem(url, policy)
    if problem is not None or not policy.production:
        return problem
    parts = urlsplit(url)
    try:
        addresses = resolver(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        return "the webhook's host does not resolve"
    return address_problem(addresses, parts.scheme, policy)


def signature_header(body: bytes, secret: str, at: dt.datetime) -> str:
    return sign_payload(body, secret, int(at.timestamp()))


def verify_signature(
    body: bytes,
    header: str | None,
    secret: str,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``header`` (``t=...,v1=...``) signs ``body`` with ``secret`` within ``tolerance`` seconds."""
    fields = dict(part.split("=", 1) for part in (header or "").split(",") if "=" in part)
    stamp = fields.get("t", "")
    if not stamp.isdigit() or abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(sign_payload(body, secret, int(stamp)), header or "")


@dataclass(frozen=True)
class WebhookSender:
    """Posts signed notifications to users' endpoints under ``policy``."""

    policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    timeout: float = SEND_TIMEOUT_SECONDS
    resolver: Resolver = field(default=resolve)

    def send(self, endpoint: Endpoint, body: bytes, key: str, now: dt.datetime) -> tuple[bool, str]:
        """``(delivered, what happened)``: delivered on a 2xx answer; redirects are not followed."""
        problem = check_webhook_url(endpoint.url, self.policy, self.resolver)
        if problem is not None:
            return False, f"refused: {problem}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "OddsForge-Webhooks/1",
            SIGNATURE_HEADER: signature_header(body, endpoint.secret, now),
            "Idempotency-Key": key,
            EVENT_ID_HEADER: key,
        }
        try:  # streamed and closed unread: a receiver's answer body is never loaded
            with httpx.stream(
                "POST", endpoint.url, content=body, headers=headers, timeout=self.timeout
            ) as answer:
                status = answer.status_code
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return 200 <= status < 300, f"HTTP {status}"


def event_body(row: dict, key: str) -> bytes:
    """The JSON a webhook receives: the delivery's id (its idempotency key), kind and the notification."""
    data = {**row, "created_at": row["created_at"].isoformat()}
    event = {"id": key, "type": row["kind"], "created_at": data["created_at"], "data": data}
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def recent_notifications(lake: Lake, now: dt.datetime) -> pl.DataFrame:
    """The outbox and pick digests that may still be delivered: created within twice the delivery
    window (a delivery first tried late in one window retries through the next)."""
    since = now - 2 * DELIVERY_WINDOW
    keys = [table_key("notifications")]
    keys += [pick_digests_key((now + dt.timedelta(days=d)).date()) for d in range(-3, 2)]
    found = [k for k in keys if lake.exists(k)]
    if not found:
        return pl.DataFrame(schema=NOTIFICATIONS)
    frames = [conform(lake.read_parquet([k], NOTIFICATIONS), NOTIFICATIONS) for k in found]
    return pl.concat(frames).filter(pl.col("created_at") >= since).sort("created_at", "notification_id")


@dataclass
class DeliveryReport:
    due: int = 0
    """Deliveries due now: to send, or to dead-letter (a dry run counts them; a run does them)."""
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    sent: list[tuple[str, str]] = field(default_factory=list)
    """``(notification_id, channel)`` of each delivery that succeeded in this run."""


@dataclass(frozen=True)
class Channel:
    name: str
    kind: ChannelKind
    since: dt.datetime
    """Notifications created before the channel existed are not sent on it."""
    endpoint: Endpoint | None = None
    address: str | None = None


def channels_of(store: NotifyStore, user_id: str, mail: bool) -> tuple[list[Channel], Preferences]:
    """The user's webhook endpoints and (with a mailer) email address, and their preferences."""
    prefs, email_since = store.preferences(user_id)
    found = [
        Channel(webhook_channel(e.endpoint_id), "webhook", e.created_at, e) for e in store.endpoints(user_id)
    ]
    if mail and prefs.email and email_since is not None:
        found.append(Channel(EMAIL_CHANNEL, "email", email_since, address=prefs.email))
    return found, prefs


def deliver(
    lake: Lake,
    now: dt.datetime,
    webhooks: WebhookSender,
    mailer: Mailer | None,
    dry_run: bool = False,
) -> DeliveryReport:
    """Send every delivery due at ``now`` (``dry_run``: only count them) and dead-letter those whose
    retries ran out."""
    store = NotifyStore(lake)
    report = DeliveryReport()
    notes = recent_notifications(lake, now)
    for (user_id,), rows in notes.group_by("user_id", maintain_order=True):
        channels, prefs = channels_of(store, str(user_id), mailer is not None)
        for channel in channels:
            wanted = [
                r
                for r in rows.iter_rows(named=True)
                if r["created_at"] >= channel.since and prefs.wants(r["kind"], channel.kind)
            ]
            if not wanted:
                continue
            done = store.deliveries(str(user_id), channel.name)
            for row in wanted:
                _deliver_one(store, row, channel, done, now, webhooks, mailer, dry_run, report)
    return report


def _deliver_one(
    store: NotifyStore,
    row: dict,
    channel: Channel,
    done: dict[str, Delivery],
    now: dt.datetime,
    webhooks: WebhookSender,
    mailer: Mailer | None,
    dry_run: bool,
    report: DeliveryReport,
) -> None:
    user_id, key = row["user_id"], delivery_key(row["notification_id"], channel.name)
    record = done.get(key)
    if record is not None and record.dead is not None:
        return
    step = next_step(key, record.attempts if record else [], now)
    if step.action in ("send", "dead"):
        report.due += 1  # a dead letter to write is work for a run too
    if step.action == "dead" and not dry_run:
        last = record.attempts[-1] if record else None
        body = {
            "notification_id": row["notification_id"],
            "attempts": step.attempt,
            "last_error": last.detail if last else "",
            "dead_at": now.isoformat(),
        }
        report.dead_lettered += store.dead_letter(user_id, channel.name, key, body)
    if step.action != "send":
        return
    if dry_run or not store.claim(user_id, channel.name, key, step.attempt, row["notification_id"], now):
        return
    if channel.endpoint is not None:
        ok, detail = webhooks.send(channel.endpoint, event_body(row, key), key, now)
    else:
        ok, detail = _mail(mailer, channel.address or "", row, key)
    store.record_result(user_id, channel.name, key, step.attempt, ok, detail, now)
    if ok:
        report.delivered += 1
        report.sent.append((row["notification_id"], channel.name))
    else:
        report.failed += 1


def _mail(mailer: Mailer | None, to: str, row: dict, key: str) -> tuple[bool, str]:
    if mailer is None:
        return False, "no SMTP server configured"
    text = f"{row['message']}\n\n(notification {row['notification_id']}, sent by OddsForge)\n"
    try:
        mailer.send(to, f"OddsForge: {row['message'][:100]}", text, key)
    except OSError as exc:  # smtplib.SMTPException is one, as are refused and timed-out connections
        return False, f"{type(exc).__name__}: {exc}"
    return True, "accepted by the SMTP server"
