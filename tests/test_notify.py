"""Follows and delivered notifications over real HTTP and SMTP (issue 16): the API registers webhook
endpoints, preferences and follows; the delivery run (``services.notify.deliver``, on an injected
clock) posts to a receiver on loopback and mails through a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import itertools
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.message import Message
from pathlib import Path

import dagster as dg
import httpx
import polars as pl
import pytest
from aiosmtpd.controller import Controller

from api.app import create_app
from api.auth import mint_token
from assets.notify import follows, pick_digests_asset
from cli.webhook_receiver import WebhookReceiver
from domain.marketplace.listing import NOTIFICATIONS, fold_subscriptions
from domain.marketplace.notify import ATTEMPT_LEASE, DELIVERY_WINDOW, WebhookPolicy, delivery_key, retry_delay
from domain.models.engine import ANALYSES
from domain.models.registry import MODEL_VERSIONS
from domain.tables.schemas import conform
from services.mail import Mailer
from services.notify import SIGNATURE_HEADER, WebhookSender, deliver, verify_signature
from stores.lake import Lake
from stores.layout import pick_digests_key, table_key, webhook_channel
from stores.notify import Endpoint
from tests.test_api import SECRET, serve, settings_for

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
USER = "carol"
NBA = "basketball_nba"
LOOPBACK = WebhookSender(WebhookPolicy(loopback_http=True))


@dataclass
class Api:
    lake: Lake
    url: str

    def client(self, user: str = USER) -> httpx.Client:
        headers = {"Authorization": f"Bearer {mint_token(user, SECRET)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    lake = Lake(root=str(tmp_path / "lake"))
    app = create_app(replace(settings_for(tmp_path / "warehouse"), webhook_loopback_http=True), lake=lake)
    app.state.clock = lambda: T0
    with serve(app) as url:
        yield Api(lake, url)


def outbox(lake: Lake, *rows: tuple[str, str, dt.datetime]) -> None:
    """Notifications ``(id, kind, created_at)`` of :data:`USER` in the outbox."""
    frame = pl.DataFrame(
        [
            {
                "notification_id": n,
                "user_id": USER,
                "model_id": "bob--m-abcdef",
                "version": 2,
                "kind": k,
                "message": f"{k} of bob's model",
                "created_at": at,
            }
            for n, k, at in rows
        ]
    )
    lake.write_parquet(table_key("notifications"), conform(frame, NOTIFICATIONS))


def register(api: Api, url: str) -> dict:
    with api.client() as client:
        answer = client.post("/me/webhooks", json={"url": url})
    assert answer.status_code == 201, answer.text
    return answer.json()


def webhooks(api: Api) -> list[dict]:
    with api.client() as client:
        answer = client.get("/me/webhooks")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_endpoint_failing_twice_gets_the_notification_once_signed_with_retries_spaced_by_the_backoff(
    api: Api,
) -> None:
    with WebhookReceiver([500, 500]) as receiver:
        endpoint = register(api, receiver.url)
        outbox(api.lake, ("new_version:bob--m-abcdef:v2:carol", "new_version", T0 + dt.timedelta(minutes=1)))
        key = delivery_key("new_version:bob--m-abcdef:v2:carol", webhook_channel(endpoint["endpoint_id"]))
        first = T0 + dt.timedelta(minutes=2)
        second = first + retry_delay(key, 1)
        third = second + retry_delay(key, 2)
        assert deliver(api.lake, first, LOOPBACK, None).failed == 1
        assert deliver(api.lake, second - dt.timedelta(seconds=1), LOOPBACK, None).due == 0
        assert deliver(api.lake, second, LOOPBACK, None).failed == 1
        assert deliver(api.lake, third, LOOPBACK, None).delivered == 1
        for later in (third, third + dt.timedelta(hours=1), third + DELIVERY_WINDOW):
            assert deliver(api.lake, later, LOOPBACK, None).due == 0
    got = receiver.received
    assert [r.status for r in got] == [500, 500, 200], "accepted exactly once"
    sent_at = [int(r.headers[SIGNATURE_HEADER].split(",")[0].removeprefix("t=")) for r in got]
    assert sent_at == [int(t.timestamp()) for t in (first, second, third)]
    for r, at in zip(got, sent_at, strict=True):
        assert verify_signature(r.body, r.headers[SIGNATURE_HEADER], endpoint["secret"], now=at)
        assert not verify_signature(r.body, r.headers[SIGNATURE_HEADER], "whsec_other", now=at)
        assert not verify_signature(r.body + b" ", r.headers[SIGNATURE_HEADER], endpoint["secret"], now=at)
        assert r.headers["Idempotency-Key"] == key == json.loads(r.body)["id"]
    assert json.loads(got[-1].body)["data"]["notification_id"] == "new_version:bob--m-abcdef:v2:carol"
    (state,) = webhooks(api)
    assert (state["delivered"], state["pending"], state["dead_letters"]) == (1, 0, [])
    assert state["last_error"] == "HTTP 500" and "secret" not in state


def test_after_24_hours_of_failures_a_notification_is_dead_lettered_and_visible(api: Api) -> None:
    with WebhookReceiver([500] * 200) as receiver:
        endpoint = register(api, receiver.url)
        outbox(api.lake, ("suspended:bob--m-abcdef:v2:carol", "suspended", T0))
        at = T0 + dt.timedelta(minutes=1)
        dead = 0
        while at < T0 + DELIVERY_WINDOW + dt.timedelta(hours=2):
            dead += deliver(api.lake, at, LOOPBACK, None).dead_lettered
            at += dt.timedelta(minutes=10)
    assert dead == 1
    assert deliver(api.lake, at, LOOPBACK, None, dry_run=True).due == 0, "nothing left to do"
    (state,) = webhooks(api)
    (letter,) = state["dead_letters"]
    assert letter["notification_id"] == "suspended:bob--m-abcdef:v2:carol"
    assert letter["attempts"] == len(receiver.received) > 20
    assert letter["last_error"] == "HTTP 500" and (state["delivered"], state["pending"]) == (0, 0)
    stamps = [int(r.headers[SIGNATURE_HEADER].split(",")[0][2:]) for r in receiver.received]
    key = delivery_key("suspended:bob--m-abcdef:v2:carol", webhook_channel(endpoint["endpoint_id"]))
    for n, (a, b) in enumerate(itertools.pairwise(stamps), start=1):
        assert b - a >= retry_delay(key, n).total_seconds() - 1
    assert stamps[-1] - stamps[0] <= DELIVERY_WINDOW.total_seconds()


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, Mailer]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, Mailer("127.0.0.1", port, "OddsForge <notifications@localhost>")
    finally:
        controller.stop()


def test_email_arrives_at_the_local_smtp_server_once_and_preferences_choose_the_channels(
    api: Api, smtp: tuple[Inbox, Mailer]
) -> None:
    inbox, mailer = smtp
    with api.client() as client:
        assert client.get("/me/notification-preferences").json()["kinds"]["daily_picks"] == [
            "webhook",
            "email",
        ]
        prefs = {"email": "carol@example.com", "kinds": {"suspended": ["email"], "new_version": ["webhook"]}}
        answer = client.put("/me/notification-preferences", json=prefs)
        assert answer.status_code == 200, answer.text
        assert client.get("/me/notification-preferences").json() == prefs
    with WebhookReceiver() as receiver:
        endpoint = register(api, receiver.url)
        outbox(
            api.lake,
            ("suspended:bob--m-abcdef:v2:carol", "suspended", T0),
            ("new_version:bob--m-abcdef:v2:carol", "new_version", T0),
        )
        report = deliver(api.lake, T0 + dt.timedelta(minutes=1), LOOPBACK, mailer)
        again = deliver(api.lake, T0 + dt.timedelta(hours=2), LOOPBACK, mailer)
    assert (report.delivered, again.due) == (2, 0)
    ((rcpt, message),) = inbox.messages
    assert rcpt == ["carol@example.com"] and message["Subject"].startswith("OddsForge: suspended of bob")
    assert message["Idempotency-Key"] == delivery_key("suspended:bob--m-abcdef:v2:carol", "email")
    (hook,) = receiver.received
    assert json.loads(hook.body)["data"]["kind"] == "new_version"
    assert verify_signature(
        hook.body, hook.headers[SIGNATURE_HEADER], endpoint["secret"], now=T0.timestamp() + 60
    )


class CrashAfterSending(WebhookSender):
    """Sends, then dies before the result is recorded (a killed run)."""

    def send(self, endpoint: Endpoint, body: bytes, key: str, now: dt.datetime) -> tuple[bool, str]:
        super().send(endpoint, body, key, now)
        raise SystemExit("killed")


def test_a_run_killed_after_sending_is_sent_again_once_its_lease_ends_with_the_same_key(api: Api) -> None:
    with WebhookReceiver() as receiver:
        register(api, receiver.url)
        outbox(api.lake, ("archived:bob--m-abcdef:v2:carol", "archived", T0))
        with pytest.raises(SystemExit):
            deliver(api.lake, T0, CrashAfterSending(WebhookPolicy(loopback_http=True)), None)
        assert deliver(api.lake, T0 + ATTEMPT_LEASE - dt.timedelta(seconds=1), LOOPBACK, None).due == 0
        assert deliver(api.lake, T0 + ATTEMPT_LEASE + dt.timedelta(hours=1), LOOPBACK, None).delivered == 1
        assert deliver(api.lake, T0 + dt.timedelta(hours=3), LOOPBACK, None).due == 0
    first, second = receiver.received
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"], "the receiver can drop it"


def test_a_removed_endpoint_gets_nothing_more(api: Api) -> None:
    with WebhookReceiver([500]) as receiver:
        endpoint = register(api, receiver.url)
        outbox(api.lake, ("archived:bob--m-abcdef:v2:carol", "archived", T0))
        deliver(api.lake, T0, LOOPBACK, None)
        with api.client() as client:
            assert client.delete(f"/me/webhooks/{endpoint['endpoint_id']}").status_code == 204
            assert client.delete(f"/me/webhooks/{endpoint['endpoint_id']}").status_code == 204
            assert client.delete("/me/webhooks/wh_0000000000000000").status_code == 404
            assert client.get("/me/webhooks").json() == []
        assert deliver(api.lake, T0 + dt.timedelta(hours=2), LOOPBACK, None).due == 0
    assert len(receiver.received) == 1


def test_webhook_urls_are_refused_without_calling_them(api: Api, tmp_path: Path) -> None:
    with api.client() as client:
        for url in ("http://hooks.example.com/x", "ftp://x.example.com", "https://u:p@x.example.com/"):
            answer = client.post("/me/webhooks", json={"url": url})
            assert answer.status_code == 422 and answer.json()["error"]["code"] == "webhook_url_refused", url
    prod = create_app(replace(settings_for(tmp_path / "w2"), environment="production"), lake=api.lake)
    resolved = {
        "internal.example.com": ["10.0.0.5"],
        "metadata.example.com": ["169.254.169.254", "93.184.216.34"],
    }
    prod.state.resolver = lambda host, port: [
        ipaddress.ip_address(a) for a in resolved.get(host, ["93.184.216.34"])
    ]
    with (
        serve(prod) as url,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {mint_token('dave', SECRET)}"}, timeout=10
        ) as client,
    ):
        for host in ("internal.example.com", "metadata.example.com"):
            answer = client.post("/me/webhooks", json={"url": f"https://{host}/hook"})
            assert answer.status_code == 422, answer.text
        assert client.post("/me/webhooks", json={"url": "http://127.0.0.1:9/"}).status_code == 422
        created = client.post("/me/webhooks", json={"url": "https://hooks.example.com/hook"})
        assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
        for _ in range(4):
            client.post("/me/webhooks", json={"url": "https://hooks.example.com/hook"})
        too_many = client.post("/me/webhooks", json={"url": "https://hooks.example.com/hook"})
        assert too_many.status_code == 409 and too_many.json()["error"]["code"] == "too_many_webhooks"


def test_follows_are_idempotent_and_fold_into_the_follows_table(api: Api) -> None:
    with api.client() as client:
        assert client.post("/creators/bob/follow").status_code == 201
        again = client.post("/creators/bob/follow")
        assert again.status_code == 200 and again.json()["following"] is True
        assert client.post("/creators/erin/follow").status_code == 201
        assert client.get("/me/following").json() == ["bob", "erin"]
        assert client.delete("/creators/erin/follow").json()["following"] is False
        assert client.delete("/creators/erin/follow").status_code == 200
        assert client.delete("/creators/zed/follow").json() == {
            "creator_id": "zed",
            "following": False,
            "since": None,
        }
        assert client.post(f"/creators/{USER}/follow").json()["error"]["code"] == "cannot_follow_self"
        assert client.post("/creators/no%20one/follow").status_code == 404
        assert client.get("/me/following").json() == ["bob"]
    result = dg.materialize([follows], resources={"lake": api.lake})
    assert result.success
    table = api.lake.read_parquet([table_key("follows")])
    assert table.select("user_id", "creator_id", "following").rows() == [
        (USER, "bob", True),
        (USER, "erin", False),
    ]


def test_the_delivery_sensor_asks_for_a_run_only_while_something_is_due(api: Api) -> None:
    from pipelines.deliveries import notification_delivery_sensor

    def tick() -> dg.RunRequest | dg.SkipReason:
        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(
                instance=instance, resources={"lake": api.lake, "webhooks": LOOPBACK, "mailer": None}
            )
            return notification_delivery_sensor(context)

    assert isinstance(tick(), dg.SkipReason)
    with WebhookReceiver() as receiver:
        register(api, receiver.url)
        outbox(api.lake, ("archived:bob--m-abcdef:v2:carol", "archived", dt.datetime.now(dt.UTC)))
        request = tick()
        assert isinstance(request, dg.RunRequest) and request.tags["oddsforge/due"] == "1"
        deliver(api.lake, dt.datetime.now(dt.UTC), LOOPBACK, None)
        assert isinstance(tick(), dg.SkipReason)


def test_pick_digests_make_one_notification_per_subscriber_and_day_and_a_rerun_adds_none(
    tmp_path: Path,
) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    now = dt.datetime.now(dt.UTC)
    today, model = now.date(), "alice--form-abcdef"
    event = {"action": "subscribe", "user_id": USER, "model_id": model, "creator_id": "alice"}
    event |= {"started_at": (now - dt.timedelta(days=1)).isoformat(), "at": now.isoformat()}
    lake.write_parquet(table_key("subscriptions"), fold_subscriptions(None, [("e1", event)], []))
    versions = pl.DataFrame({"model_id": [model], "version": [1], "name": ["Form"]})
    lake.write_parquet(table_key("model_versions"), conform(versions, MODEL_VERSIONS))
    picks = pl.DataFrame(
        {
            "model_id": [model] * 3,
            "version": [1] * 3,
            "game_id": ["g1", "g2", "g3"],
            "qualifies": [True, True, False],
        }
    )
    lake.write_parquet(table_key("analyses", NBA, today), conform(picks, ANALYSES))
    for _ in range(2):
        result = dg.materialize(
            [pick_digests_asset],
            partition_key=today.isoformat(),
            resources={"lake": lake},
            run_config={"ops": {"pick_digests": {"config": {"sports": [NBA]}}}},
        )
        assert result.success
    (digest,) = lake.read_parquet([pick_digests_key(today)]).to_dicts()
    assert digest["notification_id"] == f"daily_picks:{today}:{USER}" and digest["kind"] == "daily_picks"
    assert digest["message"].startswith(f"2 new picks for {today}") and "Form (2)" in digest["message"]
