"""Fair cancellation end to end (SPEC 6): a paid model suspended mid-period has its subscription
cancelled at the local Stripe server and the unused days refunded there, once; the refund reaches
the ledger once whether Stripe's ``charge.refunded`` webhook comes before or after; each action
leaves one audit record. Webhooks go over real HTTP, signed with the real algorithm.

Worked by hand: the subscriber paid 999 cents for 31 days from 2026-11-05 00:00 UTC; the model is
suspended 10 days 12 hours in, so 11 days have started and 20 are refunded: 999 * 20 // 31 = 644.
The ledger reverses split(644) = (450, 194): the creator keeps 699 - 450 = 249, the platform
300 - 194 = 106, and Stripe holds 999 - 644 = 355.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import httpx
import polars as pl
import pytest

from api.app import create_app
from api.auth import mint_token
from assets.cancellations import fair_cancellations
from assets.marketplace import MODEL_STATUS_KEY, model_status, subscriptions
from assets.models import model_versions
from domain.marketplace.listing import MODEL_STATUS
from domain.money.ledger import PLATFORM, balances, unbalanced
from domain.money.subscriptions import subscription_metadata, with_access
from domain.tables.schemas import conform
from services.payments import Payments
from stores.audit import read_audit
from stores.lake import Lake
from stores.layout import CANCELLATIONS_INBOX, is_refund_result_key, table_key
from stores.ledger import post_inbox, read_ledger
from stores.stripe_events import sign_payload
from tests.stripe_server import WEBHOOK_SECRET
from tests.test_api import SECRET as JWT_SECRET
from tests.test_api import serve, settings_for
from tests.test_marketplace import body
from tests.test_payments_flow import CrashingLake

if TYPE_CHECKING:
    from cli.stripe_local import StripeServer


PERIOD_START = dt.datetime(2026, 11, 5, tzinfo=dt.UTC)
SUSPENDED_AT = PERIOD_START + dt.timedelta(days=10, hours=12)
REFUND = 644
INVOICE = "in_cancel1"
CHARGE = "ch_cancel1"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=str(tmp_path / "lake"))


@pytest.fixture
def api(lake: Lake, payments: Payments, tmp_path: Path) -> Iterator[httpx.Client]:
    app = create_app(settings_for(tmp_path / "warehouse"), lake=lake, payments=payments)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def deliver(client: httpx.Client, kind: str, obj: dict[str, Any], created: int) -> None:
    """POST an event as Stripe does: its raw JSON body, signed now."""
    evt = {"id": f"evt_{kind.replace('.', '_')}_{obj['id']}_{created}", "object": "event"}
    body = json.dumps(evt | {"type": kind, "created": created, "data": {"object": obj}}).encode()
    header = sign_payload(body, WEBHOOK_SECRET, int(time.time()))
    response = client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})
    assert response.status_code == 200, response.text


def paid_subscription(
    client: httpx.Client,
    payments: Payments,
    server: StripeServer,
    model_id: str = "m1",
    period_start: dt.datetime = PERIOD_START,
    booked: bool = True,
) -> str:
    """A subscriber paying 999 for 31 days from ``period_start``, as Stripe and its webhooks leave it
    (its invoice only when ``booked``; else :func:`pay_invoice` delivers it later)."""
    sdk = payments.client.v1
    price = sdk.prices.create(
        {
            "currency": "usd",
            "unit_amount": 999,
            "recurring": {"interval": "month"},
            "product_data": {"name": "M"},
        }
    )
    customer = sdk.customers.create({})
    sub = sdk.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": price.id}],
            "metadata": subscription_metadata(model_id, "c1", "u1"),
        }
    )
    server.add(
        "charge", id=CHARGE, amount=999, amount_refunded=0, payment_intent="pi_cancel1", invoice=INVOICE
    )
    (stripe_sub,) = server.objects("subscription")
    deliver(client, "customer.subscription.created", stripe_sub, int(period_start.timestamp()))
    if booked:
        pay_invoice(client, sub.id, model_id, period_start)
    return sub.id


def pay_invoice(client: httpx.Client, sub_id: str, model_id: str, period_start: dt.datetime) -> None:
    """The ``invoice.paid`` of the 31 days from ``period_start`` (API 2025-03+ shapes: the invoice
    names its subscription under ``parent``, its charge under ``payments``)."""
    start, end = int(period_start.timestamp()), int((period_start + dt.timedelta(days=31)).timestamp())
    invoice = {
        "id": INVOICE,
        "object": "invoice",
        "amount_paid": 999,
        "currency": "usd",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": sub_id,
                "metadata": subscription_metadata(model_id, "c1", "u1"),
            },
        },
        "payments": {"data": [{"status": "paid", "payment": {"type": "charge", "charge": CHARGE}}]},
        "lines": {
            "data": [
                {
                    "id": "il_1",
                    "amount": 999,
                    "period": {"start": start, "end": end},
                }
            ]
        },
    }
    deliver(client, "invoice.paid", invoice, start + 60)


def suspend(lake: Lake) -> None:
    """What ``model_status`` writes when it suspends the paid model m1."""
    row = {
        "model_id": "m1",
        "version": 3,
        "owner_user_id": "c1",
        "name": "Model one",
        "price_cents": 999,
        "status": "suspended",
        "since": SUSPENDED_AT,
        "reason": "rolling accuracy under 50% on 3 consecutive evaluations",
    }
    lake.write_parquet(MODEL_STATUS_KEY, conform(pl.DataFrame([row]), MODEL_STATUS))


def cancel(lake: Lake, payments: Payments) -> dg.ExecuteInProcessResult:
    return dg.materialize([fair_cancellations], resources={"lake": lake, "payments": payments})


def calls(server: StripeServer, method: str, path: str) -> list[Any]:
    return [r for r in server.requests if r.method == method and r.path.startswith(path)]


def creator_balance(lake: Lake) -> int:
    rows = balances(read_ledger(lake)).filter(pl.col("account") == "creator:c1")["balance_cents"]
    return int(rows[0])


@pytest.fixture
def suspended(api: httpx.Client, lake: Lake, payments: Payments, stripe_server: StripeServer) -> str:
    """A paid subscription booked in the ledger and the subscriptions table, and its model suspended."""
    sub_id = paid_subscription(api, payments, stripe_server)
    assert dg.materialize([subscriptions], resources={"lake": lake}).success
    assert post_inbox(lake, dt.datetime.now(dt.UTC)).pending.is_empty()
    assert creator_balance(lake) == 699
    suspend(lake)
    return sub_id


def test_suspension_mid_period_cancels_and_refunds_the_unused_days_once(
    api: httpx.Client, lake: Lake, payments: Payments, stripe_server: StripeServer, suspended: str
) -> None:
    result = cancel(lake, payments)
    assert result.success
    (deleted,) = calls(stripe_server, "DELETE", f"/v1/subscriptions/{suspended}")
    assert deleted.idempotency_key == f"cancel_now:{suspended}"
    (stripe_sub,) = stripe_server.objects("subscription")
    assert stripe_sub["status"] == "canceled"
    (refund_call,) = calls(stripe_server, "POST", "/v1/refunds")
    assert (refund_call.params["amount"], refund_call.params["charge"]) == (REFUND, CHARGE)
    assert refund_call.idempotency_key == f"refund:{suspended}:{INVOICE}"
    (charge,) = stripe_server.objects("charge")
    assert charge["amount_refunded"] == REFUND
    metadata = result.asset_materializations_for_node("fair_cancellations")[0].metadata
    assert metadata["refunded_cents_this_run"].value == REFUND

    # The ledger posts the reversal: still balanced, the creator's share of the refund taken back.
    run = post_inbox(lake, dt.datetime.now(dt.UTC))
    assert run.new_entries["kind"].unique().to_list() == ["refund"]
    entries = read_ledger(lake)
    assert unbalanced(entries).is_empty() and int(entries["amount_cents"].sum()) == 0
    assert creator_balance(lake) == 699 - 450
    assert int(balances(entries).filter(pl.col("account") == PLATFORM)["balance_cents"][0]) == 300 - 194

    # Stripe's own webhooks follow: the refund is not posted again and access ends.
    deliver(api, "charge.refunded", charge, int(time.time()))
    deliver(api, "customer.subscription.deleted", stripe_sub, int(time.time()))
    assert post_inbox(lake, dt.datetime.now(dt.UTC)).new_entries.is_empty()
    assert dg.materialize([subscriptions], resources={"lake": lake}).success
    table = lake.read_parquet([table_key("subscriptions")])
    row = table.filter(pl.col("subscription_id") == suspended)
    assert row["status"].to_list() == ["cancelled"]
    assert with_access(row, dt.datetime.now(dt.UTC)).is_empty()

    # Re-runs cancel and refund nothing more; one audit record per action.
    assert cancel(lake, payments).success
    assert len(calls(stripe_server, "POST", "/v1/refunds")) == 1
    assert len(calls(stripe_server, "DELETE", "/v1/subscriptions/")) == 1
    audit = read_audit(lake)
    assert sorted(audit["action"].to_list()) == ["refund.created", "subscription.cancelled"]
    refund_record = audit.filter(pl.col("action") == "refund.created").row(0, named=True)
    assert json.loads(refund_record["after"])["amount_cents"] == REFUND
    assert refund_record["object_id"] == stripe_server.objects("refund")[0]["id"]


def test_a_refund_webhook_first_is_not_posted_twice(
    api: httpx.Client, lake: Lake, payments: Payments, stripe_server: StripeServer, suspended: str
) -> None:
    assert cancel(lake, payments).success
    (charge,) = stripe_server.objects("charge")
    deliver(api, "charge.refunded", charge, int(time.time()))
    keys = [k for k in lake.list_keys("inbox/") if is_refund_result_key(k)]
    assert len(keys) == 1
    post_inbox(lake, dt.datetime.now(dt.UTC))  # both the webhook and the recorded refund
    refunds = read_ledger(lake).filter(
        (pl.col("kind") == "refund") & (pl.col("account") == "stripe_clearing")
    )
    assert refunds["amount_cents"].to_list() == [REFUND]
    assert creator_balance(lake) == 249


def test_a_crash_after_the_refund_and_a_rerun_refund_once(
    lake: Lake, payments: Payments, stripe_server: StripeServer, suspended: str
) -> None:
    crashing = CrashingLake(lake.root, dies_at=is_refund_result_key)  # after Stripe refunded
    assert not dg.materialize(
        [fair_cancellations], resources={"lake": crashing, "payments": payments}, raise_on_error=False
    ).success
    assert cancel(lake, payments).success
    first, again = calls(stripe_server, "POST", "/v1/refunds")
    assert (first.idempotency_key, first.replayed, again.replayed) == (again.idempotency_key, False, True)
    assert len(stripe_server.objects("refund")) == 1
    assert stripe_server.objects("charge")[0]["amount_refunded"] == REFUND
    assert read_audit(lake).height == 2


def test_a_charge_partly_refunded_already_is_refunded_only_what_is_left(
    lake: Lake, payments: Payments, stripe_server: StripeServer, suspended: str
) -> None:
    payments.client.v1.refunds.create({"charge": CHARGE, "amount": 500})  # an operator, by hand
    assert cancel(lake, payments).success
    _, ours = calls(stripe_server, "POST", "/v1/refunds")
    assert ours.params["amount"] == 999 - 500 < REFUND
    assert stripe_server.objects("charge")[0]["amount_refunded"] == 999
    assert cancel(lake, payments).success  # a re-run: nothing left, nothing asked
    assert len(calls(stripe_server, "POST", "/v1/refunds")) == 2


def test_an_invoice_booked_after_the_cancellation_is_refunded_by_the_next_run(
    api: httpx.Client, lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    """The subscription is ended before its invoice.paid is booked: the run cancels, refunds
    nothing; once the late invoice is in the ledger, the next run refunds it (644, as above), once."""
    sub_id = paid_subscription(api, payments, stripe_server, booked=False)
    assert dg.materialize([subscriptions], resources={"lake": lake}).success
    suspend(lake)
    assert cancel(lake, payments).success
    assert calls(stripe_server, "POST", "/v1/refunds") == []
    (stripe_sub,) = stripe_server.objects("subscription")
    deliver(api, "customer.subscription.deleted", stripe_sub, int(time.time()))
    assert dg.materialize([subscriptions], resources={"lake": lake}).success

    pay_invoice(api, sub_id, "m1", PERIOD_START)
    post_inbox(lake, dt.datetime.now(dt.UTC))
    assert cancel(lake, payments).success
    assert cancel(lake, payments).success
    (refund_call,) = calls(stripe_server, "POST", "/v1/refunds")
    assert (refund_call.params["amount"], refund_call.idempotency_key) == (
        REFUND,
        f"refund:{sub_id}:{INVOICE}",
    )
    assert len(calls(stripe_server, "DELETE", "/v1/subscriptions/")) == 1
    post_inbox(lake, dt.datetime.now(dt.UTC))
    assert creator_balance(lake) == 249


def test_without_stripe_nothing_is_cancelled_or_recorded(lake: Lake, suspended: str) -> None:
    result = dg.materialize([fair_cancellations], resources={"lake": lake, "payments": None})
    assert result.success
    assert result.asset_materializations_for_node("fair_cancellations")[0].metadata["to_cancel"].value == 1
    assert list(lake.list_keys(CANCELLATIONS_INBOX)) == []


def test_archiving_a_paid_model_through_the_api_ends_its_subscriptions(
    api: httpx.Client, lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    """The owner archives (DELETE /models/{id}); model_versions, model_status and fair_cancellations
    follow. Paid 5 days 3 hours ago for 31 days: 6 days started, 25 refunded: 999 * 25 // 31 = 805."""
    owner = {"Authorization": f"Bearer {mint_token('c1', JWT_SECRET)}"}
    created = api.post("/models", json=body("Paid", False, price=9.99), headers=owner)
    assert created.status_code == 201, created.text
    model_id = created.json()["model_id"]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=5, hours=3)
    sub_id = paid_subscription(api, payments, stripe_server, model_id, start)
    assert dg.materialize([subscriptions], resources={"lake": lake}).success
    post_inbox(lake, dt.datetime.now(dt.UTC))
    assert dg.materialize([model_versions, model_status], resources={"lake": lake}).success
    assert api.delete(f"/models/{model_id}", headers=owner).status_code == 204
    assert dg.materialize([model_versions, model_status], resources={"lake": lake}).success
    assert cancel(lake, payments).success
    assert stripe_server.objects("subscription")[0]["status"] == "canceled"
    (refund_call,) = calls(stripe_server, "POST", "/v1/refunds")
    assert refund_call.params["amount"] == 805
    assert refund_call.idempotency_key == f"refund:{sub_id}:{INVOICE}"
    outbox = lake.read_parquet([table_key("notifications")])
    assert outbox.select("user_id", "kind").rows() == [("u1", "archived")]
    assert "refunded" in outbox["message"][0]
    assert sorted(read_audit(lake)["action"].to_list()) == [
        "model.archived",
        "refund.created",
        "subscription.cancelled",
    ]
