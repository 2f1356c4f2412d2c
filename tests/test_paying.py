"""Paying for a model over real HTTP (issue 13; SPEC 6 and 8): Stripe Checkout for a paid model, the
webhooks that give and take access, past_due's three days, and the billing portal.

The API runs under uvicorn with its clock injected; Stripe is the local server (``cli/stripe_local.py``),
where a test completes a Checkout Session as a customer would on Stripe's page; webhooks are signed with
the real algorithm at the API's time. Between steps the pipeline's part runs as its sensor would: the
``subscriptions`` asset folds the Stripe inbox and a serving snapshot is published.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import httpx
import pytest

from api.app import create_app
from api.auth import mint_token
from assets.marketplace import subscriptions
from domain.models.registry import build_version, new_model_id
from domain.money.subscriptions import PAST_DUE_GRACE, subscription_metadata
from services.payments import Payments
from stores.lake import Lake
from stores.registry import RegistryStore
from stores.reviews import decide
from stores.stripe_events import sign_payload
from stores.warehouse import Warehouse
from tests.test_api import SECRET, serve, settings_for

if TYPE_CHECKING:
    from cli.stripe_local import StripeServer


WEBHOOK_SECRET = "whsec_paying_0123456789"
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
SUCCESS = "https://web.example/billing/ok?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://web.example/billing/cancelled"
RETURN = "https://web.example/account"
SECOND = dt.timedelta(seconds=1)


def model_body(name: str, trial_days: int) -> dict[str, Any]:
    return {
        "name": name,
        "sport": "basketball_nba",
        "market": "h2h",
        "data_sources": {"team_stats": {"weight": 1.0, "fields": ["net_rating"], "lookback_games": 10}},
        "min_confidence": 0.52,
        "max_confidence": 0.8,
        "sharing": {"public": True, "price_per_month": 9.99, "trial_days": trial_days},
    }


def listed_paid_model(lake: Lake, name: str, trial_days: int) -> str:
    """A paid public model of bob's, approved by an operator (listed)."""
    model_id = new_model_id("bob", name, name.encode()[:3])
    config = build_version(
        model_body(name, trial_days),
        model_id=model_id,
        owner_user_id="bob",
        version=1,
        created_at=T0,
        updated_at=T0,
    )
    assert RegistryStore(lake).create_version(config)
    decide(lake, model_id, "approve", "fine", "ops", T0)
    return model_id


@dataclass
class Shop:
    lake: Lake
    url: str
    stripe: StripeServer
    warehouse: Warehouse
    clock: list[dt.datetime]
    trial: str
    """A listed paid model with the default 7-day trial."""
    no_trial: str
    """A listed paid model whose creator set no trial."""

    def client(self, user: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {mint_token(user, SECRET)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def at(self, when: dt.datetime) -> None:
        self.clock[0] = when

    def deliver(self, kind: str, obj: dict[str, Any]) -> None:
        """Stripe's delivery of an event created now (the API's time), signed now."""
        now = int(self.clock[0].timestamp())
        event = {
            "id": f"evt_{kind.replace('.', '_')}_{obj['id']}_{now}",
            "object": "event",
            "type": kind,
            "created": now,
            "data": {"object": obj},
        }
        body = json.dumps(event).encode()
        headers = {
            "Stripe-Signature": sign_payload(body, WEBHOOK_SECRET, now),
            "Content-Type": "application/json",
        }
        response = httpx.post(f"{self.url}/webhooks/stripe", content=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text

    def publish(self) -> None:
        """What the subscriptions sensor and the serving automation do after new events."""
        assert dg.materialize([subscriptions], resources={"lake": self.lake}).success
        self.warehouse.publish(self.lake, self.clock[0])
        time.sleep(0.25)  # the API re-reads the snapshot pointer every 0.1 s

    def checkout(self, user: str, model_id: str) -> dict[str, Any]:
        with self.client(user) as client:
            response = client.post("/marketplace/subscribe", json={"model_id": model_id})
        assert response.status_code == 201, response.text
        return response.json()

    def pay(self, session_id: str) -> dict[str, Any]:
        """The customer completes the checkout on Stripe's page, and Stripe tells OddsForge."""
        sub = self.stripe.complete_checkout(session_id)
        (session,) = [s for s in self.stripe.objects("checkout.session") if s["id"] == session_id]
        self.deliver("checkout.session.completed", session)
        self.deliver("customer.subscription.created", sub)
        return sub

    def reads(self, user: str, model_id: str) -> bool:
        """Whether ``user`` may read the paid model's configuration and analyses now."""
        with self.client(user) as client:
            status = client.get(f"/models/{model_id}").status_code
        assert status in (200, 404)
        return status == 200

    def subscriptions(self, user: str, **params: Any) -> list[dict[str, Any]]:
        with self.client(user) as client:
            response = client.get("/marketplace/subscriptions", params=params)
        assert response.status_code == 200, response.text
        return response.json()["items"]


@pytest.fixture
def shop(tmp_path: Path, stripe_server: StripeServer) -> Iterator[Shop]:
    lake = Lake(root=str(tmp_path / "lake"))
    trial, no_trial = listed_paid_model(lake, "Premium", 7), listed_paid_model(lake, "Straight", 0)
    payments = Payments(stripe_server.api_key, WEBHOOK_SECRET, api_base=stripe_server.url)
    settings = replace(
        settings_for(tmp_path / "warehouse"),
        checkout_success_url=SUCCESS,
        checkout_cancel_url=CANCEL,
        billing_return_url=RETURN,
    )
    app = create_app(settings, lake=lake, payments=payments)
    clock = [T0]
    app.state.clock = lambda: clock[0]
    warehouse = Warehouse(str(tmp_path / "warehouse"))
    with serve(app) as url:
        yield Shop(lake, url, stripe_server, warehouse, clock, trial, no_trial)


def checkout_requests(server: StripeServer) -> list[Any]:
    return [r for r in server.requests if r.path == "/v1/checkout/sessions" and r.method == "POST"]


# ---- checkout -----------------------------------------------------------------------------------


def test_a_paid_subscribe_answers_a_checkout_session_with_the_price_trial_and_metadata(shop: Shop) -> None:
    answer = shop.checkout("zoe", shop.trial)
    (session,) = shop.stripe.objects("checkout.session")
    assert (answer["session_id"], answer["checkout_url"]) == (session["id"], session["url"])
    assert (answer["model_id"], answer["price_cents"], answer["trial_days"]) == (shop.trial, 999, 7)
    (price,) = shop.stripe.objects("price")
    assert (price["unit_amount"], price["recurring"]["interval"], price["product"]) == (
        999,
        "month",
        f"model_{shop.trial}",
    )
    (customer,) = shop.stripe.objects("customer")
    (request,) = checkout_requests(shop.stripe)
    meta = {"model_id": shop.trial, "creator_id": "bob", "user_id": "zoe"}
    assert request.params == {
        "mode": "subscription",
        "customer": customer["id"],
        "client_reference_id": "zoe",
        "line_items": [{"price": price["id"], "quantity": 1}],
        "subscription_data": {"metadata": meta, "trial_period_days": 7},
        "metadata": meta,
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
    }
    assert request.idempotency_key == f"checkout:zoe:{shop.trial}:{price['id']}:1"

    with shop.client("zoe") as zoe:  # asking again while the session is open: the same session
        again = zoe.post("/marketplace/subscribe", json={"model_id": shop.trial})
    assert (again.status_code, again.json()["session_id"]) == (200, session["id"])
    assert len(checkout_requests(shop.stripe)) == 1
    assert not shop.reads("zoe", shop.trial)  # nothing is paid yet: no access

    shop.checkout("zoe", shop.no_trial)  # a creator's 0-day trial: no trial at all
    assert "trial_period_days" not in checkout_requests(shop.stripe)[-1].params["subscription_data"]


# ---- access from Stripe's events ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "ended", "status"),
    [
        ("customer.subscription.deleted", "canceled", "cancelled"),
        ("customer.subscription.updated", "unpaid", "expired"),
    ],
)
def test_a_trial_gives_access_and_a_trial_ending_unpaid_takes_it(
    shop: Shop, kind: str, ended: str, status: str
) -> None:
    session = shop.checkout("zoe", shop.trial)
    sub = shop.pay(session["session_id"])
    assert sub["status"] == "trialing" and sub["metadata"] == subscription_metadata(shop.trial, "bob", "zoe")
    shop.publish()
    assert shop.reads("zoe", shop.trial)
    assert not shop.reads("yan", shop.trial)
    (mine,) = shop.subscriptions("zoe")
    assert (mine["model_id"], mine["kind"], mine["status"], mine["subscription_id"]) == (
        shop.trial,
        "paid",
        "trial",
        sub["id"],
    )
    with shop.client("zoe") as zoe:
        twice = zoe.post("/marketplace/subscribe", json={"model_id": shop.trial})
        assert zoe.get(f"/marketplace/models/{shop.trial}").json()["subscribed"] is True
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "already_subscribed")

    # The trial ends and no payment comes: Stripe ends the subscription.
    shop.at(T0 + dt.timedelta(days=8))
    Payments(shop.stripe.api_key, WEBHOOK_SECRET, api_base=shop.stripe.url).cancel_subscription(
        sub["id"], at_period_end=False
    )
    shop.deliver(kind, sub | {"status": ended})
    shop.publish()
    assert not shop.reads("zoe", shop.trial)
    assert shop.subscriptions("zoe") == []
    (old,) = shop.subscriptions("zoe", include_ended=True)
    assert old["status"] == status
    again = shop.checkout("zoe", shop.trial)  # ended: a new checkout may start
    assert again["session_id"] != session["session_id"]
    assert checkout_requests(shop.stripe)[-1].idempotency_key.endswith(":2")


def test_past_due_keeps_access_for_exactly_three_days_after_the_failed_invoice(shop: Shop) -> None:
    sub = shop.pay(shop.checkout("zoe", shop.no_trial)["session_id"])
    assert sub["status"] == "active"
    shop.publish()
    assert shop.reads("zoe", shop.no_trial)

    renewal = T0 + dt.timedelta(days=30)  # the renewal invoice is created at the period's start
    invoice = {
        "id": "in_renewal",
        "object": "invoice",
        "created": int(renewal.timestamp()),
        "customer": sub["customer"],
        "amount_paid": 0,
        "amount_due": 999,
        "status": "open",
        "subscription": sub["id"],
        "subscription_details": {"metadata": sub["metadata"]},
    }
    shop.at(renewal + dt.timedelta(hours=1))  # Stripe tries to charge an hour later; the card fails
    shop.deliver("invoice.payment_failed", invoice)
    shop.deliver("customer.subscription.updated", sub | {"status": "past_due"})
    shop.publish()
    shop.at(renewal + PAST_DUE_GRACE - SECOND)
    assert shop.reads("zoe", shop.no_trial)
    (mine,) = shop.subscriptions("zoe")
    assert mine["status"] == "past_due"
    assert dt.datetime.fromisoformat(mine["past_due_since"]) == renewal
    shop.at(renewal + PAST_DUE_GRACE + SECOND)
    assert not shop.reads("zoe", shop.no_trial)
    assert shop.subscriptions("zoe") == []
    shop.deliver("invoice.payment_failed", invoice)  # Stripe's retry fails too: still no access
    shop.publish()
    assert not shop.reads("zoe", shop.no_trial)

    shop.at(renewal + dt.timedelta(days=5))  # the subscriber updates the card; the retry is paid
    shop.deliver("invoice.paid", invoice | {"status": "paid", "amount_paid": 999})
    shop.publish()
    assert shop.reads("zoe", shop.no_trial)
    assert [s["status"] for s in shop.subscriptions("zoe")] == ["active"]


def test_unsubscribe_cancels_the_checkout_subscription_at_period_end(shop: Shop) -> None:
    with shop.client("zoe") as zoe:
        assert (
            zoe.request("DELETE", "/marketplace/unsubscribe", json={"model_id": shop.trial}).status_code
            == 404
        )
    sub = shop.pay(shop.checkout("zoe", shop.trial)["session_id"])
    with shop.client("zoe") as zoe:
        left = zoe.request("DELETE", "/marketplace/unsubscribe", json={"model_id": shop.trial})
    assert left.status_code == 200, left.text
    assert (left.json()["subscription_id"], left.json()["status"], left.json()["cancel_at_period_end"]) == (
        sub["id"],
        "trial",
        True,
    )
    (held,) = shop.stripe.objects("subscription")
    assert held["cancel_at_period_end"] is True


# ---- the billing portal -------------------------------------------------------------------------


def test_the_billing_portal_is_the_callers_stripe_customer(shop: Shop) -> None:
    with shop.client("zoe") as zoe:
        none = zoe.post("/billing/portal")
    assert (none.status_code, none.json()["error"]["code"]) == (404, "no_billing_account")
    shop.checkout("zoe", shop.trial)
    with shop.client("zoe") as zoe:
        opened = zoe.post("/billing/portal")
    assert opened.status_code == 200, opened.text
    (portal,) = shop.stripe.objects("billing_portal.session")
    (customer,) = shop.stripe.objects("customer")
    assert opened.json() == {"url": portal["url"]}
    assert (portal["customer"], portal["return_url"]) == (customer["id"], RETURN)
    with shop.client("yan") as yan:
        assert yan.post("/billing/portal").status_code == 404  # zoe's customer is hers alone
