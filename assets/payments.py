"""Money: the ledger posted from verified Stripe webhooks, creators' balances, and monthly payouts.

The API stores each verified Stripe event under ``inbox/stripe/events/`` and answers at once; the
inbox sensor asks for a ``ledger`` run when new events (or recorded payout transfers) arrive. Each run
posts exactly the objects it has not posted yet (``stores.ledger``), retries events that
could not be attributed last time, and is checked to balance before anything downstream reads it.
``payouts`` runs per month on the 1st for the month before (``stores.payouts``): intents are
recorded before Stripe is called, so re-running a month never pays anyone twice; creators who have
not finished onboarding (``stores.payout_accounts``) wait, their balance carried over.

No ``from __future__ import annotations`` here: Dagster reads resource annotations unevaluated.
"""

import datetime as dt

import dagster as dg
import polars as pl

from assets.common import markdown_table
from domain.money.earnings import creator_balances as balances_of
from domain.money.ledger import balances, unbalanced
from domain.money.payouts import PAYOUT_MINIMUM_CENTS
from services.payments import Payments
from stores.lake import Lake
from stores.layout import STRIPE_EVENTS_INBOX, table_key
from stores.ledger import post_inbox, read_ledger, unread_keys
from stores.payouts import pay_month

BALANCES_KEY = table_key("creator_balances")
PAYOUTS_START = "2025-01"
"""The first month the platform could take payments; monthly payout partitions start here."""
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=PAYOUTS_START, fmt="%Y-%m")
"""``YYYY-MM`` partitions of completed months (the current month is not a partition until it ends)."""
NO_STRIPE = "STRIPE_API_KEY is not configured: payouts are recorded as pending_stripe and no money moves"


def ledger_problems(entries: pl.DataFrame) -> list[str]:
    """Why the ledger cannot be trusted (unbalanced transactions or total, repeated entry ids)."""
    problems = []
    bad = unbalanced(entries)
    if not bad.is_empty():
        problems.append(f"{bad.height} transactions do not sum to zero, e.g. {bad.row(0)}")
    total = int(entries["amount_cents"].sum())
    if total != 0:
        problems.append(f"the ledger sums to {total} cents, not 0")
    repeated = entries.height - entries["entry_id"].n_unique()
    if repeated:
        problems.append(f"{repeated} entry ids occur more than once")
    return problems


@dg.asset(
    group_name="payouts",
    kinds={"polars", "parquet", "stripe"},
    description="The append-only double-entry ledger in integer cents (tables/ledger/{YYYY-MM}.parquet): "
    "revenue split 70/30 from invoice.paid, refunds and disputes reversed, payouts to creators. Each "
    "run posts only inbox objects it has not posted; unattributable events wait for the next run.",
    check_specs=[
        dg.AssetCheckSpec(
            "balanced",
            asset="ledger",
            blocking=True,
            description="Every transaction and the whole ledger sum to zero; entry ids are unique.",
        )
    ],
)
def ledger(context: dg.AssetExecutionContext, lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    run = post_inbox(lake, dt.datetime.now(dt.UTC))
    pending = run.pending
    for key, reason in pending.select("key", "reason").iter_rows():
        context.log.warning("not posted yet, retried next run: %s (%s)", key, reason)
    problems = ledger_problems(run.ledger)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": run.ledger.height,
            "objects_read": run.read.height,
            "new_entries": run.new_entries.height,
            "pending_events": pending.height,
            "months_written": ", ".join(run.months_written) or "none",
            "balances": dg.MetadataValue.md(markdown_table(balances(run.ledger), rows=20)),
            "pending": dg.MetadataValue.md(markdown_table(pending.select("key", "reason"), rows=20)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="balanced",
                passed=not problems,
                metadata={"problems": "; ".join(problems) or "none", "entries": run.ledger.height},
            )
        ],
    )


@dg.asset(
    deps=[ledger],
    group_name="payouts",
    kinds={"polars", "parquet"},
    description="Per creator: revenue share earned, refunds and disputes, payouts transferred, balance "
    "(derived from the ledger, never stored anywhere else).",
)
def creator_balances(lake: dg.ResourceParam[Lake]) -> dg.MaterializeResult:
    table = balances_of(read_ledger(lake))
    lake.write_parquet(BALANCES_KEY, table)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.height,
            "owed_cents": int(table["balance_cents"].sum()),
            "preview": dg.MetadataValue.md(markdown_table(table.sort("balance_cents", descending=True))),
        }
    )


@dg.asset(
    deps=[ledger],
    group_name="payouts",
    kinds={"polars", "parquet", "stripe"},
    partitions_def=monthly_partitions,
    description=f"The month's creator payouts (tables/payouts/{{YYYY-MM}}.parquet): every creator whose "
    f"balance at the month's end reaches {PAYOUT_MINIMUM_CENTS} cents is paid all of it through a Stripe "
    "Transfer keyed payout:{creator}:{YYYY-MM}, recorded before Stripe is called; smaller balances "
    "carry over and negative ones net off later payouts. A creator whose payout account cannot receive "
    "transfers yet is recorded awaiting_onboarding and the balance carries over to the first month "
    "after onboarding.",
)
def payouts(
    context: dg.AssetExecutionContext,
    lake: dg.ResourceParam[Lake],
    payments: dg.ResourceParam[Payments | None],
) -> dg.MaterializeResult:
    month = context.partition_key
    entries = read_ledger(lake)
    problems = ledger_problems(entries)
    if problems:
        raise dg.Failure(f"refusing to pay out of an unsound ledger: {'; '.join(problems)}")
    unposted = sum(1 for k in unread_keys(lake) if k.startswith(STRIPE_EVENTS_INBOX))
    if unposted:
        context.log.warning("%d Stripe events are not in the ledger yet: they count next month", unposted)
    run = pay_month(lake, payments, month, entries, dt.datetime.now(dt.UTC))
    records = run.records
    if payments is None and not records.is_empty():
        context.log.warning(NO_STRIPE)
    status = dict(records.group_by("status").agg(pl.col("amount_cents").sum()).iter_rows())
    metadata = {
        "dagster/row_count": records.height,
        "stripe": "configured" if run.stripe else NO_STRIPE,
        "planned_this_run": len(run.planned),
        "transferred_this_run": len(run.transferred),
        **{f"{s}_cents": int(c) for s, c in sorted(status.items())},
        "unposted_events": unposted,
        "preview": dg.MetadataValue.md(markdown_table(records, rows=20)),
    }
    if run.errors:
        raise dg.Failure(
            f"Stripe refused {len(run.errors)} payouts of {month} (retried on the next run): "
            + "; ".join(f"{c}: {e}" for c, e in sorted(run.errors.items())),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)


payment_assets = [ledger, creator_balances, payouts]
