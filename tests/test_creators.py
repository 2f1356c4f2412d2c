"""Creators' side of the money (SPEC 6 and 8): the payout account opened once with an onboarding
link, its state kept from signed ``account.updated`` webhooks, payouts that wait for onboarding and
are paid once after it, the creator terms, and what publishing a paid model needs; each action
leaves exactly one audit record. Real HTTP to the API, outgoing calls to the local Stripe server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import polars as pl
import pytest

from api.app import create_app
from api.auth import mint_token
from api.settings import ApiSettings, SettingsError
from domain.money.accounts import AccountState, account_creator, account_state
from services.backtests import record_backtest
from services.payments import Payments
from stores.audit import read_audit
from stores.lake import Lake
from stores.payouts import read_payout_records
from tests.test_api import SECRET as JWT_SECRET
from tests.test_api import serve, settings_for
from tests.test_ledger import paid
from tests.test_models_registry import config_body
from tests.test_payments_flow import account_updated, deliver_http, pay, store, transfers

if TYPE_CHECKING:
    from cli.stripe_local import StripeServer


TERMS = "2026-12-01"
Client = Callable[[str], httpx.Client]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(root=str(tmp_path / "lake"))


@pytest.fixture
def as_user(lake: Lake, payments: Payments, tmp_path: Path) -> Iterator[Client]:
    """A client per user of one API (``as_user("c1")``); ``as_user("")`` is Stripe (no token)."""
    app = create_app(settings_for(tmp_path / "warehouse"), lake=lake, payments=payments)
    clients: dict[str, httpx.Client] = {}
    with serve(app) as url:

        def client(user: str) -> httpx.Client:
            if user not in clients:
                headers = {"Authorization": f"Bearer {mint_token(user, JWT_SECRET)}"} if user else {}
                clients[user] = httpx.Client(base_url=url, headers=headers, timeout=10)
            return clients[user]

        yield client
        for c in clients.values():
            c.close()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def audit(lake: Lake, action: str) -> list[dict[str, Any]]:
    return read_audit(lake).filter(pl.col("action") == action).to_dicts()


# -- the payout account ----------------------------------------------------------------------------
def test_the_payout_account_is_created_once_and_every_call_links_to_onboarding(
    as_user: Client, lake: Lake, stripe_server: StripeServer
) -> None:
    c1 = as_user("c1")
    assert ok(c1.get("/creators/me/payout-account"), 404)["error"]["code"] == "not_found"
    first = ok(c1.post("/creators/me/payout-account"), 201)
    again = ok(c1.post("/creators/me/payout-account"), 200)
    (account,) = stripe_server.objects("account")
    assert first["account_id"] == again["account_id"] == account["id"]
    assert (account["type"], account["metadata"]) == ("express", {"creator_id": "c1"})
    assert first["onboarding_url"].startswith("https://")
    creates = [r for r in stripe_server.requests if r.path == "/v1/accounts"]
    assert [r.idempotency_key for r in creates] == ["connect-account:c1"]
    links = [r.params for r in stripe_server.requests if r.path == "/v1/account_links"]
    settings = settings_for(Path("unused"))
    assert (
        links
        == [
            {
                "account": account["id"],
                "type": "account_onboarding",
                "refresh_url": settings.onboarding_refresh_url,
                "return_url": settings.onboarding_return_url,
            }
        ]
        * 2
    )
    state = ok(c1.get("/creators/me/payout-account"))
    assert state | {"created_at": None} == {
        "account_id": account["id"],
        "onboarding_started": True,
        "details_submitted": False,
        "payouts_enabled": False,
        "requirements_due": account["requirements"]["currently_due"],
        "created_at": None,
        "updated_at": None,
    }
    assert ok(as_user("c2").get("/creators/me/payout-account"), 404)  # nobody else's
    (created,) = audit(lake, "payout_account.created")
    assert (created["actor"], created["object_id"]) == ("c1", account["id"])


def test_the_state_follows_signed_account_updated_webhooks(as_user: Client, lake: Lake) -> None:
    c1, stripe = as_user("c1"), as_user("")
    account_id = ok(c1.post("/creators/me/payout-account"), 201)["account_id"]
    submitted = account_updated(
        account_id, "c1", "2025-12-01T10:00:00", payouts_enabled=False, due=("external_account",)
    )
    enabled = account_updated(account_id, "c1", "2025-12-02T10:00:00")
    assert ok(deliver_http(stripe, submitted))["duplicate"] is False
    state = ok(c1.get("/creators/me/payout-account"))
    assert (state["details_submitted"], state["payouts_enabled"], state["requirements_due"]) == (
        True,
        False,
        ["external_account"],
    )
    assert state["updated_at"] == "2025-12-01T10:00:00Z"
    ok(deliver_http(stripe, enabled))
    ok(deliver_http(stripe, submitted))  # a late redelivery of the older event changes nothing
    late = account_updated(
        account_id, "c1", "2025-11-30T10:00:00", payouts_enabled=False, details_submitted=False
    )
    ok(deliver_http(stripe, late))  # an older state delivered out of order is history, not the present
    state = ok(c1.get("/creators/me/payout-account"))
    assert (state["payouts_enabled"], state["requirements_due"], state["updated_at"]) == (
        True,
        [],
        "2025-12-02T10:00:00Z",
    )
    stranger = account_updated("acct_not_ours", "c1", "2025-12-03T10:00:00", payouts_enabled=False)
    assert ok(deliver_http(stripe, stranger))["received"] is True  # stored, never applied
    assert ok(c1.get("/creators/me/payout-account"))["payouts_enabled"] is True
    changes = sorted(audit(lake, "account.updated"), key=lambda r: r["business_key"])
    assert len(changes) == 3  # one per change seen: submitted, enabled, the late older state
    by_event = {r["business_key"]: r for r in changes}
    enabled_change = by_event[f"account.updated:{enabled['id']}"]
    assert '"payouts_enabled":false' in enabled_change["before"]
    assert '"payouts_enabled":true' in enabled_change["after"]


# -- payouts wait for onboarding -------------------------------------------------------------------
def test_a_creator_without_onboarding_is_paid_once_by_the_first_run_after_it(
    as_user: Client, lake: Lake, payments: Payments, stripe_server: StripeServer
) -> None:
    c1, c2, stripe = as_user("c1"), as_user("c2"), as_user("")
    ok(c2.post("/creators/me/payout-account"), 201)  # started, but Stripe has not enabled payouts
    store(
        lake,
        paid("in_1", 10_000, "2025-11-10T00:00:00"),
        paid("in_2", 10_000, "2025-11-12T00:00:00", creator="c2"),
    )
    november = pay(lake, payments, "2025-11")
    assert november.select("creator_id", "amount_cents", "status", "transfer_id").rows() == [
        ("c1", 7_000, "awaiting_onboarding", None),
        ("c2", 7_000, "awaiting_onboarding", None),
    ]
    assert transfers(stripe_server) == []
    mine = ok(c1.get("/creators/me/earnings"))
    assert (mine["balance_cents"], mine["pending_cents"], mine["paid_cents"]) == (7_000, 0, 0)
    assert (mine["months"][0]["payout_status"], mine["months"][0]["carried_over_cents"]) == (
        "awaiting_onboarding",
        7_000,
    )

    account_id = ok(c1.post("/creators/me/payout-account"), 201)["account_id"]
    ok(deliver_http(stripe, account_updated(account_id, "c1", "2025-12-15T00:00:00")))
    store(lake, paid("in_3", 1_000, "2025-12-05T00:00:00"))
    december = pay(lake, payments, "2025-12")
    assert december.select("creator_id", "amount_cents", "status", "destination").rows() == [
        ("c1", 7_700, "paid", account_id),
        ("c2", 7_000, "awaiting_onboarding", None),
    ]
    for month in ("2025-11", "2025-12", "2026-01", "2025-11", "2025-12"):  # re-runs, then a later month
        pay(lake, payments, month)
    assert transfers(stripe_server) == [(7_700, "payout:c1:2025-12")]
    mine = ok(c1.get("/creators/me/earnings"))
    assert (mine["balance_cents"], mine["pending_cents"], mine["paid_cents"]) == (0, 0, 7_700)
    records = read_payout_records(lake)
    assert records.filter(pl.col("status") == "paid")["payout_key"].to_list() == ["payout:c1:2025-12"]

    held = sorted(r["business_key"] for r in audit(lake, "payout.awaiting_onboarding"))
    assert held == ["payout:c1:2025-11", "payout:c2:2025-11", "payout:c2:2025-12", "payout:c2:2026-01"]
    (moved,) = audit(lake, "payout.transferred")
    assert moved["business_key"] == "payout:c1:2025-12"
    assert '"amount_cents":7700' in moved["after"]


# -- the creator terms and publishing paid models --------------------------------------------------
def test_publishing_a_paid_model_needs_the_terms_and_an_onboarding_started(
    as_user: Client, lake: Lake
) -> None:
    c1 = as_user("c1")
    paid_public = config_body(sharing={"public": True, "price_per_month": 9.99, "trial_days": 7})
    fresh = ok(c1.post("/models", json=paid_public), 422)["error"]
    assert [d["type"] for d in fresh["details"]] == ["publishing_rule", "creator_terms", "payout_account"]

    private = config_body(sharing={"public": False, "price_per_month": 9.99, "trial_days": 7})
    model_id = ok(c1.post("/models", json=private), 201)["model_id"]
    span = {"from": "2025-10-21", "to": "2025-11-30"}
    record_backtest(lake, {"model_id": model_id, "version": 1, **span, "summary": {"graded": 60}})
    both = ok(c1.put(f"/models/{model_id}", json=paid_public), 422)["error"]
    assert both["code"] == "publishing_rule"
    assert f"creator terms version {TERMS}" in both["message"] and "payout account" in both["message"]
    assert [(d["field"], d["type"]) for d in both["details"]] == [
        ("body.sharing.price_per_month", "creator_terms"),
        ("body.sharing.price_per_month", "payout_account"),
    ]

    wrong = ok(c1.post("/creators/me/terms", json={"version": "2025-01-01"}), 422)["error"]
    assert (wrong["code"], wrong["details"][0]["field"]) == ("terms_version", "body.version")
    assert TERMS in wrong["message"]
    accepted = ok(c1.post("/creators/me/terms", json={"version": TERMS}))
    assert ok(c1.post("/creators/me/terms", json={"version": TERMS})) == accepted  # the first time stays
    only_onboarding = ok(c1.put(f"/models/{model_id}", json=paid_public), 422)["error"]
    assert [d["type"] for d in only_onboarding["details"]] == ["payout_account"]
    assert "creator terms" not in only_onboarding["message"]

    ok(c1.post("/creators/me/payout-account"), 201)
    assert ok(c1.put(f"/models/{model_id}", json=paid_public))["version"] == 2
    free_public = config_body(sharing={"public": True, "price_per_month": 0})
    other = ok(as_user("c2").post("/models", json=free_public), 422)["error"]  # free: the backtest only
    assert [d["type"] for d in other["details"]] == ["publishing_rule"]

    (terms,) = audit(lake, "terms.accepted")
    assert (terms["actor"], terms["object_id"], terms["business_key"]) == (
        "c1",
        TERMS,
        f"creator-terms:c1:{TERMS}",
    )
    assert len(audit(lake, "payout_account.created")) == 1


def test_the_terms_version_comes_from_the_environment(tmp_path: Path) -> None:
    base = {"ODDSFORGE_WAREHOUSE_DIR": str(tmp_path), "ODDSFORGE_JWT_SECRET": JWT_SECRET}
    assert ApiSettings.from_env(base).creator_terms_version == TERMS
    env = base | {"ODDSFORGE_CREATOR_TERMS_VERSION": "2027-03-01"}
    assert ApiSettings.from_env(env).creator_terms_version == "2027-03-01"
    with pytest.raises(SettingsError, match="ODDSFORGE_CREATOR_TERMS_VERSION"):
        ApiSettings.from_env(base | {"ODDSFORGE_CREATOR_TERMS_VERSION": "../x"})


def test_an_account_state_reads_stripe_s_account_object() -> None:
    account = account_updated("acct_1", "c1", "2025-12-01T00:00:00", False, True, ("external_account",))
    obj = account["data"]["object"]
    assert account_state(obj) == AccountState("acct_1", True, False, ("external_account",))
    assert account_state(obj | {"requirements": None}).requirements_due == ()
    assert account_creator(obj) == "c1" and account_creator(obj | {"metadata": {}}) is None
    for broken in ({**obj, "object": "customer"}, {**obj, "requirements": {"currently_due": [1]}}):
        with pytest.raises(ValueError):
            account_state(broken)
