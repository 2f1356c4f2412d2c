"""The money loop of ``oddsforge demo``, against the local Stripe (``cli/stripe_local.py``) on loopback.

The API runs in-process over the demo's lake with a Stripe client pointed at the local server, and
the pipeline's steps run with ``STRIPE_*`` pointed at it too (as the tests do; no key, no network).
The demo plays only the parts that are not OddsForge's: the customer paying on Stripe's page
(:meth:`StripeServer.complete_checkout`), the creator finishing Stripe's onboarding form, and Stripe
sending its webhooks (signed with the real algorithm and the demo secret, posted to
``POST /webhooks/stripe``). In order:

1. bob, the creator, accepts the creator terms and opens his payout account (an onboarding link),
   then publishes a paid model (backtested, approved by the operator);
2. the 2025-11 payouts run: his balance from the month's paid subscriptions waits,
   ``awaiting_onboarding``, because Stripe has not enabled payouts to his account;
3. he completes onboarding: Stripe's ``account.updated`` (details submitted, payouts enabled);
4. the 2025-12 payouts run transfers his carried-over balance; re-running both months moves nothing;
5. heidi subscribes to bob's "Closing line value" (a Checkout Session), pays on Stripe's page, and
   Stripe's webhooks follow (``checkout.session.completed``, ``customer.subscription.created``,
   ``invoice.paid``); the billing portal opens for her;
6. bob archives the model: ``fair_cancellations`` cancels her subscription at Stripe and refunds the
   unused days pro rata, and Stripe's ``charge.refunded`` and ``customer.subscription.deleted`` follow;
7. the audit trail of all this.

A later run finds every step done in the lake and does not repeat it (each Stripe POST is keyed by
its business action and recorded first): nothing is paid or refunded twice. The local Stripe starts
empty on each run, so steps that would need the previous run's Stripe objects are not replayed.
Without Stripe's OpenAPI description (:func:`cli.stripe_local.spec_available`) there is no local
Stripe and the demo keeps to its month of signed webhooks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import polars as pl

from api.app import create_app
from api.auth import mint_token
from api.settings import ApiSettings
from assets.cancellations import fair_cancellations
from assets.marketplace import SUBSCRIPTIONS_KEY, model_status, read_table, subscriptions
from assets.models import model_versions
from assets.payments import creator_balances, ledger
from cli.demo import LOOP_MODEL, LOOP_MODEL_ID, publish_demo_models, register_demo_models
from cli.demo_payments import DEMO_MONTH, DEMO_WEBHOOK_SECRET, demo_event
from cli.runner import QUIET_RUN, Progress, run_payouts
from cli.stripe_local import API_KEY, StripeServer, load_spec_index, spec_available, spec_dir
from domain.formats.sample_league import SEASON_START
from domain.money.subscriptions import SUBSCRIPTIONS
from services.paid_subscriptions import has_checkouts
from services.payments import API_BASE_ENV, API_KEY_ENV, WEBHOOK_SECRET_ENV, Payments
from stores.audit import read_audit
from stores.lake import Lake
from stores.layout import CANCELLATIONS_INBOX, is_refund_result_key, refund_key
from stores.ledger import read_ledger
from stores.payouts import read_payout_records
from stores.registry import RegistryStore
from stores.stripe_events import sign_payload

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ONBOARDED_MONTH = "2025-12"
"""The first payout run after the creator's onboarding: it pays what waited in ``DEMO_MONTH``."""
SUBSCRIBER = "heidi"
TAG = "money-loop"
"""Seeds the ids of the events the loop delivers (``cli.demo_payments.demo_event``)."""


def unavailable_reason() -> str | None:
    """Why the loop cannot run here (no Stripe OpenAPI description), or None."""
    if spec_available():
        return None
    return (
        f"Stripe's OpenAPI description is not at {spec_dir()} (set ODDSFORGE_STRIPE_OPENAPI_DIR): "
        "no local Stripe, so the money loop is skipped and paid subscriptions are a month of signed webhooks"
    )


@contextmanager
def local_stripe(cache_dir: Path) -> Iterator[StripeServer]:
    """The local Stripe on loopback, with ``STRIPE_*`` pointed at it for this process while it runs
    (restored after: a real key in the environment is never used by the demo)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    names = (API_KEY_ENV, WEBHOOK_SECRET_ENV, API_BASE_ENV)
    saved = {name: os.environ.get(name) for name in names}
    with StripeServer(load_spec_index(cache_dir=cache_dir)) as server:
        os.environ.update(dict(zip(names, (server.api_key, DEMO_WEBHOOK_SECRET, server.url), strict=True)))
        try:
            yield server
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class _Loop:
    """The in-process API and the local Stripe of one demo run."""

    def __init__(
        self, lake: Lake, server: StripeServer, payments: Payments, api: TestClient, secret: str
    ) -> None:
        self.lake, self.server, self.payments, self.api, self.secret = lake, server, payments, api, secret

    def call(self, user: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """A request to the API as ``user``; any answer but 2xx stops the demo with the API's error."""
        headers = {"Authorization": f"Bearer {mint_token(user, self.secret)}"}
        response = self.api.request(method, path, json=body, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path} as {user}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def deliver(self, kind: str, obj: dict[str, Any]) -> None:
        """Stripe's signed delivery of an event about ``obj``, created now, to ``POST /webhooks/stripe``."""
        now = int(dt.datetime.now(dt.UTC).timestamp())
        body = json.dumps(demo_event(TAG, kind, now, obj)).encode()
        headers = {"Stripe-Signature": sign_payload(body, DEMO_WEBHOOK_SECRET, now)}
        response = self.api.post("/webhooks/stripe", content=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"webhook {kind}: {response.status_code} {response.text}")

    def materialize(self, assets: list[Any]) -> None:
        """Run pipeline assets with this lake and the local Stripe (what the sensors would start)."""
        dg.materialize(
            assets,
            instance=dg.DagsterInstance.get(),
            resources={"lake": self.lake, "payments": self.payments},
            run_config=QUIET_RUN,
        )


def run_money_loop(
    lake: Lake, server: StripeServer, progress: Progress
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Walk the loop (see the module notes); returns the ``DEMO_MONTH`` payouts report and the loop's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Starlette's notice about its client's next httpx
        from fastapi.testclient import TestClient

    settings = ApiSettings.from_env()
    payments = Payments(API_KEY, DEMO_WEBHOOK_SECRET, api_base=server.url)
    with TestClient(create_app(settings, lake=lake, payments=payments)) as api:
        loop = _Loop(lake, server, payments, api, settings.jwt_secret)
        creator = LOOP_MODEL[0]
        onboarding = _start_onboarding(loop, creator, settings.creator_terms_version, progress)
        _publish(lake, progress)
        waited = run_payouts(DEMO_MONTH, progress)
        progress(f"money loop: {DEMO_MONTH} payouts run before onboarding ends: {_statuses(waited, creator)}")
        onboarding |= _finish_onboarding(loop, creator, progress)
        paid = run_payouts(ONBOARDED_MONTH, progress)
        progress(f"money loop: {ONBOARDED_MONTH} payouts run: {_statuses(paid, creator)}")
        for month in (DEMO_MONTH, ONBOARDED_MONTH):  # a re-run pays nobody twice
            run_payouts(month, progress)
        transfers = server.objects("transfer")
        progress(f"money loop: payouts re-run; {len(transfers)} Stripe transfer(s) made by this demo run")
        checkout = _checkout(loop, LOOP_MODEL_ID, progress)
        cancellation = _archive(loop, creator, LOOP_MODEL_ID, progress)
    records = read_payout_records(lake).filter(pl.col("creator_id") == creator).sort("month")
    loop_report = {
        "stripe": server.url,
        "creator": creator,
        "onboarding": onboarding,
        "payouts": records.select("month", "amount_cents", "status", "transfer_id", "destination").to_dicts(),
        "transfers_this_run": [{"id": t["id"], "amount_cents": t["amount"]} for t in transfers],
        "checkout": checkout,
        "cancellation": cancellation,
        "audit": read_audit(lake).to_dicts(),
    }
    return waited, loop_report


def _statuses(report: dict[str, Any], creator: str) -> str:
    rows = [p for p in report["payouts"] if p["creator_id"] == creator]
    return ", ".join(f"{creator} {p['amount_cents'] / 100:.2f} {p['status']}" for p in rows) or "no payout"


def _start_onboarding(loop: _Loop, creator: str, terms: str, progress: Progress) -> dict[str, Any]:
    loop.call(creator, "POST", "/creators/me/terms", {"version": terms})
    link = loop.call(creator, "POST", "/creators/me/payout-account")
    progress(
        f"money loop: {creator} accepted terms {terms}; payout account {link['account_id']}, onboarding link"
    )
    return {
        "terms_version": terms,
        "account_id": link["account_id"],
        "onboarding_url": link["onboarding_url"],
    }


def _publish(lake: Lake, progress: Progress) -> None:
    """The loop's paid model, backtested, shared and approved (once: a later run finds it archived)."""
    state = RegistryStore(lake).state(LOOP_MODEL_ID)
    if state is not None and state.archived:
        progress(f"money loop: {LOOP_MODEL_ID} was published and archived by an earlier run")
        return
    register_demo_models(lake, [LOOP_MODEL])
    publish_demo_models(lake, SEASON_START, [LOOP_MODEL])
    progress(
        f"money loop: {LOOP_MODEL[0]} published {LOOP_MODEL_ID} (paid, no trial); the operator approved it"
    )


def _finish_onboarding(loop: _Loop, creator: str, progress: Progress) -> dict[str, Any]:
    """The creator completes Stripe's form; Stripe reports the account (once: a later run finds it
    enabled already)."""
    state = loop.call(creator, "GET", "/creators/me/payout-account")
    if not state["payouts_enabled"]:
        account = loop.server.add(
            "account",
            id=state["account_id"],
            type="express",
            metadata={"creator_id": creator},
            details_submitted=True,
            payouts_enabled=True,
            charges_enabled=True,
            requirements={"currently_due": [], "eventually_due": [], "past_due": [], "disabled_reason": None},
        )
        loop.deliver("account.updated", account)
        state = loop.call(creator, "GET", "/creators/me/payout-account")
    progress(
        f"money loop: account.updated: details_submitted {state['details_submitted']}, "
        f"payouts_enabled {state['payouts_enabled']}"
    )
    return {key: state[key] for key in ("details_submitted", "payouts_enabled", "requirements_due")}


def _checkout(loop: _Loop, model_id: str, progress: Progress) -> dict[str, Any]:
    """The subscriber's checkout, payment and Stripe's webhooks (once: a later run finds her checkout)."""
    if has_checkouts(loop.lake, SUBSCRIBER):
        progress(f"money loop: {SUBSCRIBER}'s checkout was completed by an earlier run")
        return {"user_id": SUBSCRIBER, "model_id": model_id, "this_run": False}
    answer = loop.call(SUBSCRIBER, "POST", "/marketplace/subscribe", {"model_id": model_id})
    sub = loop.server.complete_checkout(answer["session_id"])
    (session,) = [s for s in loop.server.objects("checkout.session") if s["id"] == answer["session_id"]]
    invoice_id, charge_id = f"in_{sub['id']}", f"ch_{sub['id']}"
    cents = int(answer["price_cents"])
    loop.server.add(
        "charge",
        id=charge_id,
        amount=cents,
        amount_refunded=0,
        refunded=False,
        customer=sub["customer"],
        invoice=invoice_id,
        payment_intent=f"pi_{sub['id']}",
    )
    period = {"start": sub["current_period_start"], "end": sub["current_period_end"]}
    invoice = {
        "id": invoice_id,
        "object": "invoice",
        "created": sub["created"],
        "customer": sub["customer"],
        "status": "paid",
        "billing_reason": "subscription_create",
        "currency": "usd",
        "amount_due": cents,
        "amount_paid": cents,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub["id"], "metadata": sub["metadata"]},
        },
        "lines": {"object": "list", "data": [{"object": "line_item", "amount": cents, "period": period}]},
        "payments": {
            "object": "list",
            "data": [{"status": "paid", "payment": {"type": "charge", "charge": charge_id}}],
        },
    }
    for kind, obj in (
        ("checkout.session.completed", session),
        ("customer.subscription.created", sub),
        ("invoice.paid", invoice),
    ):
        loop.deliver(kind, obj)
    loop.materialize([subscriptions, ledger, creator_balances])
    portal = loop.call(SUBSCRIBER, "POST", "/billing/portal")
    progress(
        f"money loop: {SUBSCRIBER} checked out ({answer['session_id']}), paid {cents / 100:.2f} on Stripe's "
        f"page: {sub['id']} {sub['status']}; 3 webhooks; billing portal opened"
    )
    return {
        "user_id": SUBSCRIBER,
        "model_id": model_id,
        "this_run": True,
        "session_id": answer["session_id"],
        "checkout_url": answer["checkout_url"],
        "price_cents": cents,
        "trial_days": answer["trial_days"],
        "subscription_id": sub["id"],
        "stripe_status": sub["status"],
        "invoice_id": invoice_id,
        "billing_portal_url": portal["url"],
    }


def _archive(loop: _Loop, creator: str, model_id: str, progress: Progress) -> dict[str, Any]:
    """The creator archives the paid model; fair cancellation cancels and refunds; Stripe's webhooks
    follow. A later run finds nothing left to cancel."""
    loop.call(creator, "DELETE", f"/models/{model_id}")
    loop.materialize([model_versions, model_status, fair_cancellations])
    for sub in loop.server.objects("subscription"):
        if sub["status"] == "canceled":
            loop.deliver("customer.subscription.deleted", sub)
    for charge in loop.server.objects("charge"):
        if charge["amount_refunded"]:
            loop.deliver("charge.refunded", charge)
    loop.materialize([subscriptions, ledger, creator_balances])
    refunds = []
    for key in loop.lake.list_keys(CANCELLATIONS_INBOX):
        if is_refund_result_key(key):
            done = json.loads(loop.lake.get_bytes(key))
            planned = refund_key(done["subscription_id"], done["invoice_id"], "refunds")
            refunds.append({"refund_id": done["refund_id"], **json.loads(loop.lake.get_bytes(planned))})
    made = len(loop.server.objects("refund"))
    summary = ", ".join(f"{r['amount_cents'] / 100:.2f} of {r['paid_cents'] / 100:.2f}" for r in refunds)
    progress(
        f"money loop: {creator} archived {model_id}; refunds {summary or 'none'} ({made} made by this run)"
    )
    subs = read_table(loop.lake, SUBSCRIPTIONS_KEY, SUBSCRIPTIONS).filter(pl.col("model_id") == model_id)
    entries = read_ledger(loop.lake)
    return {
        "model_id": model_id,
        "refunds": refunds,
        "refunds_this_run": made,
        "subscriptions": subs.select("user_id", "subscription_id", "status").to_dicts(),
        "ledger": {"entries": entries.height, "sum_cents": int(entries["amount_cents"].sum())},
    }
