"""Money end to end: signed webhooks over real HTTP into the inbox, the ledger and balances assets,
monthly payouts with Stripe Transfers on the local Stripe server, the earnings endpoint, paid
subscriptions and ``oddsforge payouts``.

Amounts worked by hand: an invoice of 5 cents splits 3 / 2; 7,142 gives the creator 4,999 (a cent
under the $50 minimum), and 999 more gives 699, so 5,698; 10,000 gives 7,000 and 20,000 gives 14,000.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import httpx
import polars as pl
import pytest

from api.app import create_app
from api.auth import mint_token
from assets.marts import dbt_build_args
from assets.payments import NO_STRIPE, creator_balances, ledger, payouts
from cli.demo_payments import DEMO_MONTH, DEMO_WEBHOOK_SECRET, deliver, demo_events
from cli.main import main, print_money_loop
from cli.runner import run_money
from domain.money.ledger import PLATFORM, unbalanced
from domain.money.subscriptions import subscription_metadata, subscription_states
from pipelines.sensors import stripe_inbox_sensor
from services.paid_subscriptions import (
    AlreadySubscribedError,
    NoPaidSubscriptionError,
    cancel_paid_subscription,
    has_checkouts,
    start_checkout,
)
from services.payments import Payments
from stores.lake import Lake
from stores.layout import STRIPE_EVENTS_INBOX, is_payout_transfer_key
from stores.ledger import post_inbox, read_inbox_state, read_ledger
from stores.payout_accounts import apply_account_event, open_payout_account, record_payout_account
from stores.payouts import pay_month, read_payout_records
from stores.stripe_events import read_events, sign_payload
from tests.stripe_server import WEBHOOK_SECRET
from tests.test_api import SECRET as JWT_SECRET
from tests.test_api import serve, settings_for
from tests.test_dbt import query, run_dbt
from tests.test_ledger import event, paid, refunded, ts

if TYPE_CHECKING:
    from cli.stripe_local import StripeServer


NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
"""When the tests' payout runs happen (every month they pay has ended)."""


# -- fixtures and helpers ------------------------------------------------------------------------
@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=str(tmp_path / "lake"))


@pytest.fixture
def api(lake: Lake, payments: Payments, tmp_path: Path) -> Iterator[httpx.Client]:
    app = create_app(settings_for(tmp_path / "warehouse"), lake=lake, payments=payments)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def deliver_http(
    client: httpx.Client, evt: dict[str, Any], secret: str = WEBHOOK_SECRET, signed_at: int | None = None
) -> httpx.Response:
    """POST an event as Stripe does: the raw JSON body signed at ``signed_at`` (default: now)."""
    body = json.dumps(evt).encode()
    header = sign_payload(body, secret, int(time.time()) if signed_at is None else signed_at)
    return client.post(
        "/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def subscription_event(kind: str, status: str, at: str, sub_id: str = "sub_1", user: str = "u1") -> dict:
    sub = {
        "id": sub_id,
        "object": "subscription",
        "customer": f"cus_{user}",
        "status": status,
        "metadata": subscription_metadata("m1", "c1", user),
        "start_date": ts("2025-11-01T00:00:00"),
        "trial_end": None,
        "cancel_at_period_end": False,
        "items": {
            "data": [
                {"price": {"id": "price_1", "unit_amount": 999}, "current_period_end": ts(at) + 86_400 * 30}
            ]
        },
    }
    return event(kind, sub, ts(at))


def pay(lake: Lake, payments: Payments | None, month: str, now: dt.datetime = NOW) -> pl.DataFrame:
    """Post the inbox, run the month's payouts, post the transfers: what the sensor and schedule do."""
    post_inbox(lake, now)
    records = pay_month(lake, payments, month, read_ledger(lake), now).records
    post_inbox(lake, now)
    return records


def store(lake: Lake, *events: dict[str, Any]) -> None:
    """Events as the webhook stores them (for tests about what happens after the endpoint)."""
    deliver(lake, list(events), WEBHOOK_SECRET, time.time())


def transfers(server: StripeServer) -> list[tuple[int, str]]:
    """``(amount, payout key)`` of every transfer on the server, by key."""
    return sorted(
        ((t["amount"], t["metadata"]["payout_key"]) for t in server.objects("transfer")), key=lambda t: t[1]
    )


def account_updated(
    account_id: str,
    creator: str,
    at: str,
    payouts_enabled: bool = True,
    details_submitted: bool = True,
    due: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Stripe's ``account.updated`` for a creator's Express account (the fields the platform reads)."""
    account = {
        "id": account_id,
        "object": "account",
        "type": "express",
        "details_submitted": details_submitted,
        "payouts_enabled": payouts_enabled,
        "charges_enabled": False,
        "requirements": {"currently_due": list(due), "eventually_due": list(due), "past_due": []},
        "metadata": {"creator_id": creator},
    }
    return event("account.updated", account, ts(at))


def onboard(lake: Lake, payments: Payments, *creators: str, at: str = "2025-10-01T00:00:00") -> None:
    """What a creator's onboarding leaves: their Connect account, and Stripe's ``account.updated``
    enabling its payouts (as the webhook endpoint applies it)."""
    for creator in creators:
        account = open_payout_account(lake, payments, creator, NOW)
        assert apply_account_event(lake, account_updated(account.account_id, creator, at))


def ready_to_sell(client: httpx.Client, lake: Lake, creator: str) -> None:
    """What publishing a paid model needs of its creator (SPEC 6): the current creator terms accepted
    through the API and a payout account whose onboarding started (recorded as Stripe created it)."""
    version = settings_for(Path("unused")).creator_terms_version
    assert client.post("/creators/me/terms", json={"version": version}).status_code == 200
    record_payout_account(lake, creator, {"id": f"acct_{creator}", "object": "account"}, NOW)


def earnings(client: httpx.Client, user: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {mint_token(user, JWT_SECRET)}"}
    response = client.get("/creators/me/earnings", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# -- the webhook endpoint ------------------------------------------------------------------------
def test_bad_signature_or_stale_timestamp_is_refused_and_nothing_stored(
    api: httpx.Client, lake: Lake
) -> None:
    evt = paid("in_1", 999, "2025-11-10T12:00:00")
    now = int(time.time())
    refused = [
        deliver_http(api, evt, secret="whsec_someone_else"),
        deliver_http(api, evt, signed_at=now - 301),
        api.post("/webhooks/stripe", content=json.dumps(evt).encode()),
    ]
    tampered = json.dumps(evt).encode()
    header = sign_payload(tampered, WEBHOOK_SECRET, now)
    refused.append(
        api.post(
            "/webhooks/stripe",
            content=tampered.replace(b"999", b"9999"),
            headers={"Stripe-Signature": header},
        )
    )
    assert [r.status_code for r in refused] == [400, 400, 400, 400]
    assert [r.json()["error"]["code"] for r in refused] == ["invalid_webhook"] * 4
    assert "tolerance" in refused[1].json()["error"]["message"]
    huge = b" " * 1_000_001
    too_large = api.post(
        "/webhooks/stripe",
        content=huge,
        headers={"Stripe-Signature": sign_payload(huge, WEBHOOK_SECRET, now)},
    )
    assert (too_large.status_code, too_large.json()["error"]["code"]) == (413, "payload_too_large")
    assert list(lake.list_keys("inbox/")) == []
    accepted = deliver_http(api, evt, signed_at=now - 290)
    assert accepted.status_code == 200
    assert accepted.json() == {
        "received": True,
        "event_id": evt["id"],
        "type": "invoice.paid",
        "duplicate": False,
    }
    assert list(lake.list_keys(STRIPE_EVENTS_INBOX)) == [f"{STRIPE_EVENTS_INBOX}{evt['id']}.json"]


def test_webhook_without_stripe_configured_is_503(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    with serve(create_app(settings_for(tmp_path), lake=lake)) as url:
        response = deliver_http(httpx.Client(base_url=url), paid("in_1", 999, "2025-11-10T12:00:00"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "payments_not_configured"
    assert list(lake.list_keys("inbox/")) == []


def test_the_same_event_twice_at_once_posts_once(api: httpx.Client, lake: Lake) -> None:
    evt = paid("in_1", 999, "2025-11-10T12:00:00")
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def send() -> None:
        start.wait()
        answers.append(deliver_http(api, evt))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True]
    run = post_inbox(lake, NOW)
    assert run.new_entries["txn_id"].unique().to_list() == ["invoice:in_1"]
    assert run.new_entries.height == 3
    assert deliver_http(api, evt).json()["duplicate"] is True  # a later redelivery
    assert post_inbox(lake, NOW).new_entries.is_empty()
    assert read_ledger(lake).height == 3


def test_invoice_paid_before_the_subscription_exists_ends_right(api: httpx.Client, lake: Lake) -> None:
    """Stripe's order is not guaranteed: the invoice and the subscription's later update arrive
    before its creation; revenue books at once and the subscription ends active."""
    created = subscription_event("customer.subscription.created", "incomplete", "2025-11-03T10:00:00")
    updated = subscription_event("customer.subscription.updated", "active", "2025-11-03T10:00:05")
    invoice = paid("in_1", 999, "2025-11-03T10:00:04", model="m1", creator="c1")
    for evt in (invoice, updated):
        assert deliver_http(api, evt).status_code == 200
    first = post_inbox(lake, NOW)
    assert first.pending.is_empty()
    assert first.new_entries.filter(pl.col("account") == "creator:c1")["amount_cents"].to_list() == [699]
    assert deliver_http(api, created).status_code == 200
    post_inbox(lake, NOW)
    states = subscription_states(read_events(lake, list(lake.list_keys(STRIPE_EVENTS_INBOX))))
    assert states.select("subscription_id", "status", "model_id", "creator_id").rows() == [
        ("sub_1", "active", "m1", "c1")
    ]
    assert read_ledger(lake).height == 3


def test_five_cent_invoice_splits_three_two_end_to_end(api: httpx.Client, lake: Lake) -> None:
    assert deliver_http(api, paid("in_5c", 5, "2025-11-10T12:00:00")).status_code == 200
    result = dg.materialize([ledger, creator_balances], resources={"lake": lake})
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("balanced", True)
    entries = dict(read_ledger(lake).select("account", "amount_cents").iter_rows())
    assert entries == {"stripe_clearing": -5, "creator:c1": 3, PLATFORM: 2}
    balances = lake.read_parquet(["tables/creator_balances.parquet"])
    assert balances.select("creator_id", "earned_cents", "balance_cents").rows() == [("c1", 3, 3)]
    mine = earnings(api, "c1")
    assert (mine["earned_cents"], mine["balance_cents"], mine["paid_cents"]) == (3, 3, 0)
    assert mine["months"][0] | {"transfer_id": None} == {
        "month": "2025-11",
        "revenue_cents": 3,
        "reversed_cents": 0,
        "earned_cents": 3,
        "payout_cents": None,
        "payout_status": None,
        "transfer_id": None,
        "carried_over_cents": 3,
    }


def test_unattributable_event_waits_and_is_posted_later(lake: Lake) -> None:
    """A refund whose invoice is not booked yet is pending, and posts once its invoice arrives."""
    store(lake, refunded("in_1", 999, "2025-11-12T00:00:00"))
    first = post_inbox(lake, NOW)
    assert first.new_entries.is_empty()
    assert first.pending["reason"].str.contains("not booked yet").to_list() == [True]
    store(lake, paid("in_1", 999, "2025-11-10T00:00:00"))
    second = post_inbox(lake, NOW)
    assert sorted(second.new_entries["kind"].unique().to_list()) == ["refund", "revenue"]
    assert read_inbox_state(lake)["outcome"].to_list() == ["posted", "posted"]
    assert unbalanced(read_ledger(lake)).is_empty()
    assert int(read_ledger(lake)["amount_cents"].sum()) == 0


# -- payouts -------------------------------------------------------------------------------------
def test_creator_under_the_minimum_is_paid_the_next_month(
    lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    onboard(lake, payments, "c1")
    store(lake, paid("in_1", 7_142, "2025-11-20T00:00:00"))
    assert pay(lake, payments, "2025-11").is_empty()
    assert transfers(stripe_server) == []
    store(lake, paid("in_2", 999, "2025-12-05T00:00:00"))
    december = pay(lake, payments, "2025-12")
    assert december.select("creator_id", "amount_cents", "status").rows() == [("c1", 5_698, "paid")]
    assert transfers(stripe_server) == [(5_698, "payout:c1:2025-12")]
    (account,) = stripe_server.objects("account")
    assert stripe_server.objects("transfer")[0]["destination"] == account["id"] == december["destination"][0]
    entries = read_ledger(lake)
    assert entries.filter(pl.col("account") == "creator:c1")["amount_cents"].sum() == 0
    assert entries.filter(pl.col("account") == "stripe_transfers")["amount_cents"].to_list() == [5_698]


def test_refund_after_a_payout_is_netted_off(
    api: httpx.Client, lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    onboard(lake, payments, "c1")
    store(lake, paid("in_1", 10_000, "2025-11-10T00:00:00"))
    assert pay(lake, payments, "2025-11")["amount_cents"].to_list() == [7_000]
    store(lake, refunded("in_1", 10_000, "2025-12-03T00:00:00"))
    assert pay(lake, payments, "2025-12").is_empty()  # the creator owes 7,000 now
    assert earnings(api, "c1")["balance_cents"] == -7_000
    store(lake, paid("in_2", 20_000, "2026-01-15T00:00:00"))
    assert pay(lake, payments, "2026-01")["amount_cents"].to_list() == [7_000]  # 14,000 - 7,000
    assert transfers(stripe_server) == [(7_000, "payout:c1:2025-11"), (7_000, "payout:c1:2026-01")]
    mine = earnings(api, "c1")
    assert (mine["earned_cents"], mine["paid_cents"], mine["pending_cents"], mine["balance_cents"]) == (
        14_000,
        14_000,
        0,
        0,
    )
    months = {m["month"]: m for m in mine["months"]}
    assert (months["2025-12"]["reversed_cents"], months["2025-12"]["carried_over_cents"]) == (-7_000, -7_000)
    assert (months["2026-01"]["payout_status"], months["2026-01"]["carried_over_cents"]) == ("paid", 0)
    entries = read_ledger(lake)
    assert unbalanced(entries).is_empty() and int(entries["amount_cents"].sum()) == 0
    assert entries.filter(pl.col("account") == PLATFORM)["amount_cents"].sum() == 3_000 - 3_000 + 6_000


class Killed(Exception):
    """The process died here."""


class CrashingLake(Lake):
    """The lake of a process that dies right after Stripe answered, before recording the answer
    under a key ``dies_at`` accepts (by default a payout's transfer)."""

    def __init__(self, root: str, dies_at: Callable[[str], bool] = is_payout_transfer_key) -> None:
        super().__init__(root=root)
        self.dies_at = dies_at

    def put_new(self, key: str, data: bytes) -> bool:
        if self.dies_at(key):
            raise Killed("between Stripe's answer and the record")
        return super().put_new(key, data)


def test_rerun_and_crash_after_the_stripe_call_pay_nobody_twice(
    lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    onboard(lake, payments, "c1", "c2")
    store(
        lake,
        paid("in_1", 10_000, "2025-11-10T00:00:00"),
        paid("in_2", 8_000, "2025-11-11T00:00:00", creator="c2"),
    )
    post_inbox(lake, NOW)
    crashing = CrashingLake(root=lake.root)
    crashed = dg.materialize(
        [payouts],
        partition_key="2025-11",
        resources={"lake": crashing, "payments": payments},
        raise_on_error=False,
    )
    assert not crashed.success
    assert transfers(stripe_server) == [(7_000, "payout:c1:2025-11")]  # Stripe paid c1, nobody recorded it

    resources = {"lake": lake, "payments": payments}
    for _ in range(2):  # the retry, then a plain re-run of the month
        assert dg.materialize([payouts], partition_key="2025-11", resources=resources).success
    assert transfers(stripe_server) == [(7_000, "payout:c1:2025-11"), (5_600, "payout:c2:2025-11")]
    calls = [r for r in stripe_server.requests if r.path == "/v1/transfers"]
    assert [(r.idempotency_key, r.replayed) for r in calls] == [
        ("payout:c1:2025-11", False),
        ("payout:c1:2025-11", True),  # the retry got the same transfer back
        ("payout:c2:2025-11", False),
    ]
    table = read_payout_records(lake)
    assert table.select("creator_id", "status").rows() == [("c1", "paid"), ("c2", "paid")]
    assert set(table["transfer_id"]) == {t["id"] for t in stripe_server.objects("transfer")}


def test_unrecorded_transfer_older_than_stripe_remembers_is_not_retried(
    lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    onboard(lake, payments, "c1")
    store(lake, paid("in_1", 10_000, "2025-11-10T00:00:00"))
    post_inbox(lake, NOW)
    with pytest.raises(Killed):
        pay_month(CrashingLake(root=lake.root), payments, "2025-11", read_ledger(lake), NOW)
    later = pay_month(lake, payments, "2025-11", read_ledger(lake), NOW + dt.timedelta(days=2))
    assert later.records.select("status").item() == "unconfirmed"
    assert "check it" in later.records["detail"].item()
    assert len([r for r in stripe_server.requests if r.path == "/v1/transfers"]) == 1


def test_without_stripe_the_plan_is_pending_then_paid_once_stripe_is_configured(
    lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    onboard(lake, payments, "c1")
    store(lake, paid("in_1", 10_000, "2025-11-10T00:00:00"))
    pending = pay(lake, None, "2025-11")
    assert pending.select("amount_cents", "status", "transfer_id").rows() == [(7_000, "pending_stripe", None)]
    assert read_ledger(lake).filter(pl.col("kind") == "payout").is_empty()  # no money moved
    store(lake, paid("in_2", 10_000, "2025-11-20T00:00:00"))  # late revenue carries over to December
    done = pay(lake, payments, "2025-11")
    assert done.select("amount_cents", "status").rows() == [(7_000, "paid")]
    assert transfers(stripe_server) == [(7_000, "payout:c1:2025-11")]
    assert pay(lake, payments, "2025-12")["amount_cents"].to_list() == [7_000]


# -- the sensor, the CLI, the demo's webhooks ----------------------------------------------------
def test_sensor_asks_once_per_new_objects(lake: Lake) -> None:
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"lake": lake})
        assert isinstance(stripe_inbox_sensor(context), dg.SkipReason)
        store(lake, paid("in_1", 999, "2025-11-10T00:00:00"))
        first = stripe_inbox_sensor(context)
        (request,) = first.run_requests
        assert request.run_key.startswith("ledger-")
        context.update_cursor(first.cursor)
        assert isinstance(stripe_inbox_sensor(context), dg.SkipReason)


def run_cli(*argv: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, json.loads(out.getvalue())


def test_payouts_command_json(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stripe_server: StripeServer
) -> None:
    monkeypatch.setenv("ODDSFORGE_LAKE", lake.root)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    onboard(lake, Payments(stripe_server.api_key, WEBHOOK_SECRET, stripe_server.url), "c1")
    store(
        lake,
        paid("in_1", 10_000, "2025-11-10T00:00:00"),
        paid("in_2", 999, "2025-11-11T00:00:00", creator="c2"),
    )
    code, report = run_cli("payouts", "--month", "2025-11", "--json")
    assert code == 0
    assert report["stripe"].startswith("STRIPE_API_KEY is not configured")
    assert [(p["creator_id"], p["amount_cents"], p["status"]) for p in report["payouts"]] == [
        ("c1", 7_000, "pending_stripe")
    ]
    assert {c["creator_id"]: c["carried_over_cents"] for c in report["creators"]} == {"c1": 0, "c2": 699}
    assert report["ledger"] == {"entries": 6, "sum_cents": 0, "unposted_objects": 0}

    monkeypatch.setenv("STRIPE_API_KEY", stripe_server.api_key)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.url)
    for _ in range(2):
        code, report = run_cli("payouts", "--month", "2025-11", "--json")
        assert (code, report["stripe"]) == (0, "configured")
        (payout,) = report["payouts"]
        assert (payout["status"], payout["transfer_id"]) == (
            "paid",
            stripe_server.objects("transfer")[0]["id"],
        )
    assert transfers(stripe_server) == [(7_000, "payout:c1:2025-11")]
    assert report["ledger"]["entries"] == 8  # the payout's two entries are posted

    code = main(["payouts", "--month", "2999-01"])
    assert code == 2


def test_demo_webhooks_are_signed_verified_and_book_the_month(lake: Lake) -> None:
    model = {
        "model_id": "bob--rotation-strength-x1",
        "owner_user_id": "bob",
        "price_cents": 999,
        "trial_days": 7,
    }
    events = demo_events(model, "2025-11", subscribers=12)
    counts = deliver(lake, events, DEMO_WEBHOOK_SECRET, time.time())
    assert counts == {"delivered": len(events) + 1, "stored": len(events), "duplicates": 1}
    assert deliver(lake, events, DEMO_WEBHOOK_SECRET, time.time())["stored"] == 0  # the demo re-run
    run = post_inbox(lake, NOW)
    assert run.pending.is_empty()
    creator = run.ledger.filter(pl.col("account") == "creator:bob")["amount_cents"]
    assert creator.sum() == 10 * 699  # 11 paid the month, one was refunded; the 12th cancelled in trial
    plan = pay_month(lake, None, "2025-11", run.ledger, NOW).records
    # bob never onboarded in this lake: the payout waits for it and the balance carries over
    assert plan.select("creator_id", "amount_cents", "status").rows() == [
        ("bob", 6_990, "awaiting_onboarding")
    ]
    states = subscription_states(read_events(lake, list(lake.list_keys(STRIPE_EVENTS_INBOX))))
    assert states.group_by("status").len().sort("status").rows() == [("active", 10), ("cancelled", 2)]


def test_demo_without_stripe_s_description_falls_back_to_the_webhook_month(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh clone has no ``../shared``: the demo's money stage says so in one line, runs the
    month's payouts without Stripe, and succeeds (``make demo`` never fails for it)."""
    empty = tmp_path / "no-stripe-description"
    empty.mkdir()
    monkeypatch.setenv("ODDSFORGE_STRIPE_OPENAPI_DIR", str(empty))
    monkeypatch.setenv("ODDSFORGE_LAKE", lake.root)
    (tmp_path / "dagster").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    model = {
        "model_id": "bob--rotation-strength-x1",
        "owner_user_id": "bob",
        "price_cents": 999,
        "trial_days": 7,
    }
    deliver(lake, demo_events(model, DEMO_MONTH), DEMO_WEBHOOK_SECRET, time.time())
    lines: list[str] = []
    report, loop = run_money(lake, tmp_path / "warehouse" / "stripe-spec", lines.append)
    assert loop["available"] is False and str(empty) in loop["reason"]
    assert [line for line in lines if str(empty) in line] == [loop["reason"]]
    assert report["succeeded"] and report["stripe"] == NO_STRIPE
    assert [(p["creator_id"], p["amount_cents"], p["status"]) for p in report["payouts"]] == [
        ("bob", 6_990, "awaiting_onboarding")
    ]
    assert not (tmp_path / "warehouse").exists()  # no local Stripe, no spec index cache
    out = io.StringIO()
    with redirect_stdout(out):
        print_money_loop(loop)
    assert out.getvalue().splitlines() == ["", "Money loop (local Stripe):", f"  {loop['reason']}."]


# -- paid subscriptions --------------------------------------------------------------------------
MODEL_ROW = {
    "model_id": "m1",
    "version": 1,
    "owner_user_id": "c1",
    "name": "Sharp Spreads",
    "price_cents": 999,
    "trial_days": 7,
    "status": "active",
}


URLS = ("https://web.example/ok", "https://web.example/cancelled")


def checkout(lake: Lake, payments: Payments, user: str, row: dict[str, Any] = MODEL_ROW) -> dict[str, Any]:
    return start_checkout(lake, payments, user, row, dt.datetime.now(dt.UTC), URLS)


def test_paid_checkout_starts_once_with_its_trial_and_cancels_at_period_end(
    lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    assert not has_checkouts(lake, "u1")
    started = checkout(lake, payments, "u1")
    assert has_checkouts(lake, "u1") and not has_checkouts(lake, "u2")
    assert (started["trial_days"], started["price_cents"], started["created"]) == (7, 999, True)
    (session,) = stripe_server.objects("checkout.session")
    assert (session["id"], session["url"]) == (started["session_id"], started["checkout_url"])
    assert session["metadata"] == {"model_id": "m1", "creator_id": "c1", "user_id": "u1"}
    again = checkout(lake, payments, "u1")
    assert (again["session_id"], again["created"]) == (session["id"], False)
    assert len(stripe_server.objects("checkout.session")) == len(stripe_server.objects("price")) == 1
    assert sorted(lake.list_keys("inbox/stripe/")) == [
        "inbox/stripe/customers/u1.json",
        "inbox/stripe/prices/m1/999.json",
        "inbox/stripe/subscriptions/u1/m1/000001.json",
        "inbox/stripe/subscriptions/u1/m1/000001.session.json",
    ]
    with pytest.raises(NoPaidSubscriptionError):  # nothing paid yet: nothing to cancel
        cancel_paid_subscription(lake, payments, "u1", "m1", dt.datetime.now(dt.UTC))
    sub = stripe_server.complete_checkout(session["id"])
    with pytest.raises(AlreadySubscribedError):
        checkout(lake, payments, "u1")
    cancelled = cancel_paid_subscription(lake, payments, "u1", "m1", dt.datetime.now(dt.UTC))
    assert (cancelled["subscription_id"], cancelled["status"], cancelled["cancel_at_period_end"]) == (
        sub["id"],
        "trial",
        True,
    )
    assert stripe_server.objects("subscription")[0]["cancel_at_period_end"] is True
    with pytest.raises(NoPaidSubscriptionError):
        cancel_paid_subscription(lake, payments, "u2", "m1", dt.datetime.now(dt.UTC))


def test_an_attempt_that_never_reached_stripe_is_retried_with_its_key(
    lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    """A crash (or an outage) after the attempt was recorded: the retry makes the same call, once."""
    first = checkout(lake, payments, "u1")
    session_record = "inbox/stripe/subscriptions/u1/m1/000001.session.json"
    lake.delete(session_record)  # as if the process died before recording Stripe's answer
    retried = checkout(lake, payments, "u1")
    assert (retried["session_id"], retried["created"]) == (first["session_id"], True)
    calls = [r for r in stripe_server.requests if r.path == "/v1/checkout/sessions"]
    assert [(r.idempotency_key, r.replayed) for r in calls] == [
        (calls[0].idempotency_key, False),
        (calls[0].idempotency_key, True),
    ]
    assert calls[0].idempotency_key.endswith(":1") and lake.exists(session_record)


def test_a_new_price_is_used_after_a_price_change(
    lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    checkout(lake, payments, "u1")
    checkout(lake, payments, "u2", MODEL_ROW | {"price_cents": 1_499})
    prices = {p["unit_amount"]: p for p in stripe_server.objects("price")}
    assert (prices[999]["active"], prices[1_499]["active"]) == (False, True)
    sessions = {s["metadata"]["user_id"]: s for s in stripe_server.objects("checkout.session")}
    sub = stripe_server.complete_checkout(sessions["u2"]["id"])
    assert sub["items"]["data"][0]["price"]["id"] == prices[1_499]["id"]
    # u1's open session charges the old price: asking again opens one at the new price.
    repriced = checkout(lake, payments, "u1", MODEL_ROW | {"price_cents": 1_499})
    assert (repriced["created"], repriced["price_cents"]) == (True, 1_499)
    last = [r for r in stripe_server.requests if r.path == "/v1/checkout/sessions"][-1]
    assert last.params["line_items"] == [{"price": prices[1_499]["id"], "quantity": 1}]
    assert last.idempotency_key == f"checkout:u1:m1:{prices[1_499]['id']}:2"


def test_payouts_run_on_the_first_for_the_month_before() -> None:
    from pipelines.definitions import defs

    schedule = defs.resolve_schedule_def("monthly_payouts_schedule")
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2025-12"
    assert schedule.cron_schedule == "0 6 1 * *"


def test_monthly_revenue_mart(lake: Lake, payments: Payments, tmp_path: Path) -> None:
    """MRR, refunds, the 30/70 split and payouts per month, built by dbt over the ledger's objects."""
    onboard(lake, payments, "c1")
    store(lake, paid("in_1", 10_000, "2025-11-10T00:00:00"), paid("in_2", 999, "2025-11-30T23:59:59"))
    pay(lake, payments, "2025-11")  # 7,000 + 699 = 7,699 paid out, booked on 1 December
    store(lake, refunded("in_2", 999, "2025-12-02T00:00:00"), paid("in_3", 5, "2025-12-03T00:00:00"))
    post_inbox(lake, NOW)
    path = tmp_path / "marts.duckdb"
    run_dbt([*dbt_build_args(lake, path), "--select", "+monthly_revenue"], tmp_path)
    rows = query(path, "select * from monthly_revenue order by month").drop("month").to_dicts()
    assert rows == [
        {
            "paid_invoices": 2,
            "mrr_cents": 10_999,
            "refunds_cents": 0,
            "net_revenue_cents": 10_999,
            "platform_revenue_cents": 3_000 + 300,
            "creator_earnings_cents": 7_000 + 699,
            "creator_payouts_cents": 0,
            "creators_paid": 0,
        },
        {
            "paid_invoices": 1,
            "mrr_cents": 5,
            "refunds_cents": 999,
            "net_revenue_cents": -994,
            "platform_revenue_cents": -300 + 2,
            "creator_earnings_cents": -699 + 3,
            "creator_payouts_cents": 7_699,
            "creators_paid": 1,
        },
    ]
