"""Fair cancellation (SPEC 6): a paid model that is suspended or archived stops billing.

``fair_cancellations`` runs after ``model_status`` (which suspends models, and sees an owner's archive
through ``model_versions``): every live paid subscription of a suspended or archived model is
cancelled at once through Stripe and the unused days of its paid period are refunded pro rata
(``services.fair_cancellation``; records before every Stripe call, so re-runs never refund twice).
The refunds reach the ledger through its inbox sensor; subscribers were notified by ``model_status``.
It also runs when the ledger books new payments: an invoice of an ended subscription booked after the
run that ended it (its ``invoice.paid`` came late) is refunded then.

No ``from __future__ import annotations`` here: Dagster reads resource annotations unevaluated.
"""

import datetime as dt

import dagster as dg

from assets.common import markdown_table
from assets.marketplace import MODEL_STATUS_KEY, SUBSCRIPTIONS_KEY, read_table
from domain.marketplace.listing import MODEL_STATUS
from domain.money.refunds import subscriptions_to_end
from domain.money.subscriptions import SUBSCRIPTIONS
from services.fair_cancellation import end_subscriptions, ended_subscriptions, paid_invoices
from services.payments import Payments
from stores.lake import Lake
from stores.ledger import read_ledger

NO_STRIPE = "STRIPE_API_KEY is not configured: no subscription is cancelled and nothing is refunded"


@dg.asset(
    deps=["model_status", "subscriptions", "ledger"],
    group_name="payouts",
    kinds={"stripe"},
    description="Fair cancellation: every live paid subscription of a suspended or archived model is "
    "cancelled at once through Stripe and the unused days of its paid period refunded pro rata by day "
    "(cents rounded down); intents are recorded before Stripe is called, so re-runs refund nothing twice.",
)
def fair_cancellations(
    context: dg.AssetExecutionContext,
    lake: dg.ResourceParam[Lake],
    payments: dg.ResourceParam[Payments | None],
) -> dg.MaterializeResult:
    now = dt.datetime.now(dt.UTC)
    targets = subscriptions_to_end(
        read_table(lake, SUBSCRIPTIONS_KEY, SUBSCRIPTIONS),
        read_table(lake, MODEL_STATUS_KEY, MODEL_STATUS),
        ended_subscriptions(lake),
    )
    preview = markdown_table(targets.select("subscription_id", "model_id", "listing_status", "since"))
    if payments is None:
        if not targets.is_empty():
            context.log.warning(NO_STRIPE)
        return dg.MaterializeResult(
            metadata={
                "stripe": NO_STRIPE,
                "to_cancel": targets.height,
                "subscriptions": dg.MetadataValue.md(preview),
            }
        )
    models = targets["model_id"].unique().to_list()
    run = end_subscriptions(lake, payments, targets, paid_invoices(lake, read_ledger(lake), models), now)
    for key, error in run.errors.items():
        context.log.error("Stripe refused %s: %s (retried next run)", key, error)
    for key in run.unconfirmed:
        context.log.warning("%s was sent to Stripe over a day ago with no recorded answer: check it", key)
    if run.errors:
        raise dg.Failure(f"{len(run.errors)} subscriptions could not be cancelled or refunded: {run.errors}")
    return dg.MaterializeResult(
        metadata={
            "to_cancel": targets.height,
            "cancelled_this_run": len(run.cancelled),
            "refunds_this_run": len(run.refunded),
            "refunded_cents_this_run": run.refunded_cents,
            "unconfirmed": len(run.unconfirmed),
            "subscriptions": dg.MetadataValue.md(preview),
        }
    )


cancellation_assets = [fair_cancellations]
