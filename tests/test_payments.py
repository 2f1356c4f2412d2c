"""Stripe: webhook signatures, the event inbox, and the Payments client through the official SDK
against a local server that checks every request against Stripe's OpenAPI description."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import httpx
import pytest
import stripe

from domain.money.subscriptions import subscription_metadata
from resources.payments import PaymentsResource
from services.payments import Payments
from stores.lake import Lake
from stores.layout import STRIPE_EVENTS_INBOX, stripe_event_key
from stores.stripe_events import (
    read_events,
    sign_payload,
    store_event,
    verify_stripe_signature,
)

if TYPE_CHECKING:
    from cli.stripe_local import StripeServer

"""The server's fixtures: ``stripe_spec`` (once per session) and ``stripe_server`` (per test)."""

SECRET = "whsec_test_0123456789abcdef"
NOW = 1_717_000_000
EVENT = {"id": "evt_1Abc", "object": "event", "type": "invoice.paid", "created": NOW, "data": {"object": {}}}
PAYLOAD = json.dumps(EVENT).encode()


# -- signatures ----------------------------------------------------------------------------------
def test_good_signature_passes() -> None:
    header = sign_payload(PAYLOAD, SECRET, NOW)
    assert re.fullmatch(r"t=1717000000,v1=[0-9a-f]{64}", header)
    assert verify_stripe_signature(PAYLOAD, header, SECRET, now=NOW + 299) == EVENT


def test_signatures_agree_with_the_stripe_sdk() -> None:
    now = int(time.time())
    assert stripe.WebhookSignature.verify_header(PAYLOAD, sign_payload(PAYLOAD, SECRET, now), SECRET, 300)
    sdk_header = stripe.WebhookSignature.generate_signature_header(PAYLOAD.decode(), SECRET, now)
    assert sdk_header == sign_payload(PAYLOAD, SECRET, now)
    assert verify_stripe_signature(PAYLOAD, sdk_header, SECRET)["id"] == "evt_1Abc"


def test_any_of_several_signatures_passes_while_a_secret_is_rolled() -> None:
    old = sign_payload(PAYLOAD, "whsec_old", NOW).split(",")[1]
    header = f"{sign_payload(PAYLOAD, SECRET, NOW)},{old}"
    assert verify_stripe_signature(PAYLOAD, header, "whsec_old", now=NOW)["id"] == "evt_1Abc"


@pytest.mark.parametrize(
    ("payload", "header", "secret", "reason"),
    [
        (
            PAYLOAD.replace(b"invoice.paid", b"invoice.void"),
            sign_payload(PAYLOAD, SECRET, NOW),
            SECRET,
            "match",
        ),
        (PAYLOAD, sign_payload(PAYLOAD, "whsec_other", NOW), SECRET, "match"),
        (PAYLOAD, f"t={NOW + 1},{sign_payload(PAYLOAD, SECRET, NOW).split(',')[1]}", SECRET, "match"),
        (PAYLOAD, "", SECRET, "no Stripe-Signature"),
        (PAYLOAD, f"t={NOW}", SECRET, "no v1"),
        (PAYLOAD, "v1=abc", SECRET, "timestamp"),
        (b"[1]", sign_payload(b"[1]", SECRET, NOW), SECRET, "not a Stripe event"),
    ],
)
def test_bad_signature_is_rejected(payload: bytes, header: str, secret: str, reason: str) -> None:
    with pytest.raises(stripe.SignatureVerificationError, match=reason):
        verify_stripe_signature(payload, header, secret, now=NOW)


def test_stale_timestamp_is_rejected() -> None:
    header = sign_payload(PAYLOAD, SECRET, NOW)
    assert verify_stripe_signature(PAYLOAD, header, SECRET, now=NOW + 300)
    with pytest.raises(stripe.SignatureVerificationError, match="301 s old"):
        verify_stripe_signature(PAYLOAD, header, SECRET, now=NOW + 301)
    old = sign_payload(PAYLOAD, SECRET, int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        verify_stripe_signature(PAYLOAD, old, SECRET)


# -- inbox ---------------------------------------------------------------------------------------
def test_store_event_once_even_concurrently(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path / "lake"))
    results: list[bool] = []
    start = threading.Barrier(8)

    def deliver() -> None:
        start.wait()
        results.append(store_event(lake, EVENT))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store_event(lake, EVENT) is False
    keys = list(lake.list_keys(STRIPE_EVENTS_INBOX))
    assert keys == ["inbox/stripe/events/evt_1Abc.json"]
    assert read_events(lake, keys) == [EVENT]


def test_event_id_cannot_choose_the_inbox_path() -> None:
    with pytest.raises(ValueError, match="not a Stripe event id"):
        stripe_event_key("evt_1/../../tables/x")


# -- the local Stripe server ---------------------------------------------------------------------
def post_form(server: StripeServer, path: str, form: dict[str, str]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    return httpx.post(f"{server.url}{path}", data=form, headers=headers)


def test_server_checks_requests_against_the_openapi_description(stripe_server: StripeServer) -> None:
    unknown = post_form(stripe_server, "/v1/products", {"name": "x", "colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "param": "colour",
        "message": "Received unknown parameter: colour",
    }
    missing = post_form(stripe_server, "/v1/transfers", {"amount": "100", "currency": "usd"})
    assert (missing.status_code, missing.json()["error"]["param"]) == (400, "destination")
    nested = post_form(stripe_server, "/v1/prices", {"currency": "usd", "recurring[interval]": "fortnight"})
    assert (
        nested.json()["error"]["message"]
        == "Invalid recurring[interval]: must be one of day, month, week, year"
    )
    not_int = post_form(stripe_server, "/v1/prices", {"currency": "usd", "unit_amount": "9.99"})
    assert not_int.json()["error"]["message"] == "Invalid integer: 9.99"
    nowhere = post_form(stripe_server, "/v1/bananas", {})
    assert nowhere.status_code == 404
    unauthorised = httpx.post(f"{stripe_server.url}/v1/products", data={"name": "x"})
    assert unauthorised.status_code == 401
    assert stripe_server.objects("product") == []


def test_sdk_errors_surface_as_stripe_errors(stripe_server: StripeServer) -> None:
    client = stripe.StripeClient(stripe_server.api_key, base_addresses={"api": stripe_server.url})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.products.create({"name": "x", "colour": "red"})  # type: ignore[typeddict-unknown-key]
    assert err.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError, match="No such price"):
        client.v1.prices.retrieve("price_missing")


# -- the Payments resource -----------------------------------------------------------------------
@pytest.fixture
def payments(stripe_server: StripeServer) -> Payments:
    return Payments(api_key=stripe_server.api_key, webhook_secret=SECRET, api_base=stripe_server.url)


def test_product_and_price(payments: Payments, stripe_server: StripeServer) -> None:
    product_id, price_id = payments.ensure_product_and_price("m1", "Sharp Spreads", 999, None)
    assert product_id == "model_m1"
    (price,) = stripe_server.objects("price")
    assert (price["id"], price["unit_amount"], price["currency"], price["product"]) == (
        price_id,
        999,
        "usd",
        product_id,
    )
    assert (price["recurring"]["interval"], price["metadata"]) == ("month", {"model_id": "m1"})
    assert [(r.method, r.path, r.status, r.idempotency_key) for r in stripe_server.requests] == [
        ("GET", "/v1/products/model_m1", 404, None),
        ("POST", "/v1/products", 200, "product:m1"),
        ("POST", "/v1/prices", 200, "price:m1:999:first"),
    ]
    # Unchanged price: nothing new is created.
    assert payments.ensure_product_and_price("m1", "Sharp Spreads", 999, price_id) == (product_id, price_id)
    assert len(stripe_server.objects("price")) == 1
    assert len(stripe_server.objects("product")) == 1


def test_price_change_creates_a_new_price_and_archives_the_old(
    payments: Payments, stripe_server: StripeServer
) -> None:
    _, first = payments.ensure_product_and_price("m1", "Sharp Spreads", 999, None)
    _, second = payments.ensure_product_and_price("m1", "Sharp Spreads v2", 1_499, first)
    assert second != first
    prices = {p["id"]: p for p in stripe_server.objects("price")}
    assert (prices[first]["unit_amount"], prices[first]["active"]) == (999, False)
    assert (prices[second]["unit_amount"], prices[second]["active"]) == (1_499, True)
    (product,) = stripe_server.objects("product")
    assert product["name"] == "Sharp Spreads v2"
    # Back to the first amount later: a new Price again, never the archived one.
    _, third = payments.ensure_product_and_price("m1", "Sharp Spreads v2", 999, second)
    assert third not in {first, second}


URLS = ("https://app.example/ok?session_id={CHECKOUT_SESSION_ID}", "https://app.example/cancelled")


def test_checkout_session_with_trial(payments: Payments, stripe_server: StripeServer) -> None:
    _, price_id = payments.ensure_product_and_price("m1", "Sharp Spreads", 999, None)
    customer = payments.ensure_customer("u1", "fan@example.com")
    assert payments.ensure_customer("u1", "fan@example.com") == customer
    meta = subscription_metadata("m1", "c1", "u1")
    session = payments.create_checkout_session(customer, price_id, 7, meta, URLS, "checkout:u1:m1:p:1")
    again = payments.create_checkout_session(customer, price_id, 7, meta, URLS, "checkout:u1:m1:p:1")
    assert again.id == session.id
    path = "/v1/checkout/sessions"
    (request,) = [r for r in stripe_server.requests if r.path == path and not r.replayed]
    assert request.idempotency_key == "checkout:u1:m1:p:1"
    assert request.params == {
        "mode": "subscription",
        "customer": customer,
        "client_reference_id": "u1",
        "line_items": [{"price": price_id, "quantity": 1}],
        "subscription_data": {"metadata": meta, "trial_period_days": 7},
        "metadata": meta,
        "success_url": URLS[0],
        "cancel_url": URLS[1],
    }
    assert (session.status, session.mode, session.customer) == ("open", "subscription", customer)
    assert session.id in session.url
    assert payments.checkout_session(session.id).status == "open"
    sub = stripe_server.complete_checkout(session.id)  # the customer pays on Stripe's page
    assert (sub["status"], sub["customer"], sub["metadata"]) == ("trialing", customer, meta)
    assert sub["trial_end"] - sub["trial_start"] == 7 * 86_400
    assert sub["items"]["data"][0]["price"]["id"] == price_id
    assert payments.checkout_session(session.id).subscription == sub["id"]
    assert payments.subscription_status(sub["id"]) == ("trialing", False)
    assert payments.cancel_subscription(sub["id"]) == "trialing"
    assert payments.subscription_status(sub["id"]) == ("trialing", True)
    assert payments.cancel_subscription(sub["id"], at_period_end=False) == "canceled"
    assert len(stripe_server.objects("customer")) == 1


def test_a_checkout_without_trial_sends_no_trial_days(
    payments: Payments, stripe_server: StripeServer
) -> None:
    """Stripe refuses ``trial_period_days=0``: a creator's 0-day trial omits it."""
    _, price_id = payments.ensure_product_and_price("m1", "Sharp Spreads", 999, None)
    meta = subscription_metadata("m1", "c1", "u1")
    session = payments.create_checkout_session(payments.ensure_customer("u1"), price_id, 0, meta, URLS, "k")
    (request,) = [r for r in stripe_server.requests if r.path == "/v1/checkout/sessions"]
    assert request.params["subscription_data"] == {"metadata": meta}
    assert stripe_server.complete_checkout(session.id)["status"] == "active"


def test_billing_portal_session(payments: Payments, stripe_server: StripeServer) -> None:
    customer = payments.ensure_customer("u1")
    url = payments.create_portal_session(customer, "https://app.example/account", 1_717_000_000)
    (portal,) = stripe_server.objects("billing_portal.session")
    assert (url, portal["customer"], portal["return_url"]) == (
        portal["url"],
        customer,
        "https://app.example/account",
    )
    (request,) = [r for r in stripe_server.requests if r.path == "/v1/billing_portal/sessions"]
    assert request.idempotency_key == f"portal:{customer}:1717000000"


def test_transfer_with_the_same_key_creates_one_transfer(
    payments: Payments, stripe_server: StripeServer
) -> None:
    account = payments.ensure_connect_account("c1")["id"]
    assert payments.ensure_connect_account("c1")["id"] == account
    first = payments.create_transfer(5_349, account, "payout:c1:2024-02", {"creator_id": "c1"})
    again = payments.create_transfer(5_349, account, "payout:c1:2024-02", {"creator_id": "c1"})
    assert again == first
    (transfer,) = stripe_server.objects("transfer")
    assert (transfer["amount"], transfer["destination"], transfer["currency"]) == (5_349, account, "usd")
    assert transfer["metadata"] == {"creator_id": "c1", "payout_key": "payout:c1:2024-02"}
    replays = [r.replayed for r in stripe_server.requests if r.path == "/v1/transfers"]
    assert replays == [False, True]
    with pytest.raises(stripe.IdempotencyError):
        payments.create_transfer(9_999, account, "payout:c1:2024-02", {"creator_id": "c1"})
    payments.create_transfer(5_000, account, "payout:c1:2024-03", {"creator_id": "c1"})
    assert len(stripe_server.objects("transfer")) == 2
    assert len(stripe_server.objects("account")) == 1


def test_every_post_carries_a_business_idempotency_key(
    payments: Payments, stripe_server: StripeServer
) -> None:
    _, price_id = payments.ensure_product_and_price("m1", "Sharp Spreads", 999, None)
    customer = payments.ensure_customer("u1")
    meta = subscription_metadata("m1", "c1", "u1")
    payments.create_checkout_session(customer, price_id, 0, meta, URLS, f"checkout:u1:m1:{price_id}:2")
    payments.create_portal_session(customer, URLS[1], 1_717_000_000)
    account = payments.ensure_connect_account("c1")["id"]
    link = payments.create_onboarding_link(account, "https://x.test/refresh", "https://x.test/back", "link:1")
    payments.create_transfer(5_000, account, "payout:c1:2024-01", {})
    keys = [r.idempotency_key for r in stripe_server.requests if r.method == "POST"]
    assert keys == [
        "product:m1",
        "price:m1:999:first",
        "customer:u1",
        f"checkout:u1:m1:{price_id}:2",
        f"portal:{customer}:1717000000",
        "connect-account:c1",
        "link:1",
        "payout:c1:2024-01",
    ]
    assert link.startswith("https://")
    (request,) = [r for r in stripe_server.requests if r.path == "/v1/account_links"]
    assert request.params == {
        "account": account,
        "type": "account_onboarding",
        "refresh_url": "https://x.test/refresh",
        "return_url": "https://x.test/back",
    }


def test_payments_from_env_resolves_secrets_at_run_time(
    monkeypatch: pytest.MonkeyPatch, stripe_server: StripeServer
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", stripe_server.api_key)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.url)
    unresolved = PaymentsResource.from_env()
    assert isinstance(unresolved.api_key, dg.EnvVar)  # the secret itself is read only when a run starts

    @dg.asset
    def connect_account(payments: dg.ResourceParam[Payments]) -> str:
        return payments.ensure_connect_account("c7")["id"]

    result = dg.materialize([connect_account], resources={"payments": unresolved})
    assert result.output_for_node("connect_account") == stripe_server.objects("account")[0]["id"]
    assert PaymentsResource.from_env().process_config_and_initialize().webhook_secret == SECRET
    assert Payments.from_env().webhook_secret == SECRET  # the API's, without Dagster
