"""The money ledger: append-only, double-entry, integer cents, posted from Stripe events.

Sign convention: ``amount_cents > 0`` credits an account (money it holds or is owed), ``< 0`` debits
it. Accounts:

- ``creator:{creator_id}``: what the platform owes a creator (their balance; negative after a
  refund or dispute of revenue already paid out, netted off later payouts);
- ``platform``: the platform's 30% share;
- ``stripe_clearing``: money collected through Stripe (debited by revenue, credited by refunds and
  disputes, so its balance is minus the net cash Stripe collected);
- ``stripe_transfers``: money paid out to creators' Connect accounts.

Every business event is one *transaction* (``txn_id``) whose entries sum to zero, so the whole ledger
sums to zero and balances are derived, never stored. Entry ids are ``{txn_id}:{account}`` and
transaction ids derive from Stripe ids, so posting an event twice (a webhook retry, a re-run) adds
nothing: :func:`post` keeps only entry ids it has not seen.

Postings (SPEC section 8):

- ``invoice.paid`` books revenue once per invoice (``txn invoice:{invoice_id}``): ``amount_paid`` is
  split with :func:`split`. The model and creator come from the subscription metadata Stripe copies
  onto the invoice itself (``subscription_details.metadata``, ``parent.subscription_details.metadata``
  since API 2025-03-31, or a subscription line's ``metadata``), so an ``invoice.paid`` arriving before
  ``customer.subscription.created`` books correctly. A $0 invoice (a trial starting) books nothing.
  Stripe fees are the platform's cost: the creator's 70% is of the amount the subscriber paid.
- ``charge.refunded`` carries the charge's cumulative ``amount_refunded``. The reversal is the same
  split applied to the cumulative amount, minus what earlier refunds of the charge reversed
  (``txn refund:{charge_id}:{cumulative}``). So partial refunds add up exactly, and a full refund
  reverses exactly the original split.
- Disputes: ``charge.dispute.created`` (unless it is an inquiry, status ``warning_*``, which moves no
  money) or ``charge.dispute.funds_withdrawn`` reverse the disputed amount, split the same way
  (``txn dispute:{dispute_id}``, whichever arrives first); ``charge.dispute.funds_reinstated`` or
  ``charge.dispute.closed`` with status ``won`` post the opposite (``txn dispute_reinstated:{id}``).
- Payouts: :func:`domain.money.payouts.payout_entries` (debit the creator, credit ``stripe_transfers``).

Refunds and disputes name only a charge; which model and creator it paid comes from the revenue
already in the ledger (matched by charge, invoice or payment intent id). An event that cannot be
attributed yet (its invoice is not booked, or an invoice carries no OddsForge metadata) raises
:class:`UnpostableEvent`; :func:`post_events` reports it as pending for a later run instead of guessing.
All amounts are in the platform's one currency (prices are created in USD).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from domain.money.pricing import CREATOR_SHARE_PERCENT
from domain.money.subscriptions import META_CREATOR, META_MODEL, invoice_metadata
from domain.tables.schemas import UTC_TS

CLEARING = "stripe_clearing"
PLATFORM = "platform"
TRANSFERS = "stripe_transfers"
CREATOR_PREFIX = "creator:"

Kind = Literal["revenue", "refund", "dispute", "dispute_reinstated", "payout"]

LEDGER: dict[str, pl.DataType] = {
    "entry_id": pl.String(),
    "txn_id": pl.String(),
    "kind": pl.String(),
    "account": pl.String(),
    "amount_cents": pl.Int64(),
    "booked_at": UTC_TS,
    "creator_id": pl.String(),
    "model_id": pl.String(),
    "invoice_id": pl.String(),
    "charge_id": pl.String(),
    "payment_intent_id": pl.String(),
    "source_id": pl.String(),
}
"""Ledger entries. ``source_id`` is the Stripe event id (or payout key) that posted the entry;
``creator_id``/``model_id`` and the Stripe payment ids are repeated on every entry of a transaction."""

_INQUIRY_PREFIX = "warning_"
_DISPUTE_REVERSAL_EVENTS = frozenset({"charge.dispute.created", "charge.dispute.funds_withdrawn"})
_EVENT_TYPES = frozenset(
    {
        "invoice.paid",
        "charge.refunded",
        *_DISPUTE_REVERSAL_EVENTS,
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    }
)


class UnpostableEvent(Exception):
    """A money event that cannot be attributed to a model and creator (yet); the message says why."""


@dataclass(frozen=True)
class Owner:
    """The model (and its creator) that a payment paid for."""

    model_id: str
    creator_id: str


@dataclass(frozen=True)
class Entry:
    """One ledger line; see :data:`LEDGER`."""

    entry_id: str
    txn_id: str
    kind: Kind
    account: str
    amount_cents: int
    booked_at: dt.datetime
    creator_id: str
    model_id: str | None
    source_id: str
    invoice_id: str | None = None
    charge_id: str | None = None
    payment_intent_id: str | None = None


def split(amount_cents: int) -> tuple[int, int]:
    """``(creator, platform)`` shares of an amount; floor for the creator so the two sum exactly."""
    creator = amount_cents * CREATOR_SHARE_PERCENT // 100
    return creator, amount_cents - creator


def creator_account(creator_id: str) -> str:
    return f"{CREATOR_PREFIX}{creator_id}"


def transaction(
    txn_id: str,
    kind: Kind,
    legs: Mapping[str, int],
    *,
    booked_at: dt.datetime,
    creator_id: str,
    model_id: str | None,
    source_id: str,
    invoice_id: str | None = None,
    charge_id: str | None = None,
    payment_intent_id: str | None = None,
) -> list[Entry]:
    """The entries of one balanced transaction (``legs``: account -> signed cents); zero legs are
    left out. Raises if the legs do not sum to zero, so no caller can post an unbalanced event."""
    if sum(legs.values()) != 0:
        raise ValueError(f"transaction {txn_id} does not balance: {dict(legs)}")
    return [
        Entry(
            entry_id=f"{txn_id}:{account}",
            txn_id=txn_id,
            kind=kind,
            account=account,
            amount_cents=cents,
            booked_at=booked_at,
            creator_id=creator_id,
            model_id=model_id,
            source_id=source_id,
            invoice_id=invoice_id,
            charge_id=charge_id,
            payment_intent_id=payment_intent_id,
        )
        for account, cents in legs.items()
        if cents != 0
    ]


def _id(value: Any) -> str | None:
    """A Stripe reference that may be an id or an expanded object."""
    if isinstance(value, Mapping):
        return value.get("id")
    return value if isinstance(value, str) else None


def invoice_owner(invoice: Mapping[str, Any]) -> Owner | None:
    """The model and creator an invoice pays for, from the subscription metadata Stripe copies onto it
    (:func:`domain.money.subscriptions.invoice_metadata`)."""
    metadata = invoice_metadata(invoice)
    return Owner(metadata[META_MODEL], metadata[META_CREATOR]) if metadata else None


def invoice_payment_ids(invoice: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(charge_id, payment_intent_id)`` of a paid invoice: top-level fields up to API 2025-02,
    ``payments.data[].payment`` after (the first paid payment)."""
    charge, intent = _id(invoice.get("charge")), _id(invoice.get("payment_intent"))
    if charge or intent:
        return charge, intent
    payments = (invoice.get("payments") or {}).get("data") or []
    paid = [p for p in payments if p.get("status", "paid") == "paid"] or payments
    payment = (paid[0].get("payment") or {}) if paid else {}
    return _id(payment.get("charge")), _id(payment.get("payment_intent"))


@dataclass
class LedgerIndex:
    """What posting refunds and disputes needs to know from entries already posted."""

    owners: dict[str, Owner] = field(default_factory=dict)
    """Owner of booked revenue, keyed by its invoice, charge and payment intent ids."""
    refunded: dict[str, int] = field(default_factory=dict)
    """Cents reversed so far by refunds, per charge id."""
    txns: set[str] = field(default_factory=set)
    """Transactions posted: the batch's disputes found in the ledger, and everything posted since
    (a reinstatement waits for its dispute)."""

    @classmethod
    def of(cls, ledger: pl.DataFrame, events: Iterable[Mapping[str, Any]]) -> LedgerIndex:
        """The index restricted to the payments and disputes that ``events`` mention."""
        refs: set[str] = set()
        txns: set[str] = set()
        for event in events:
            obj = event["data"]["object"]
            if event["type"] == "charge.refunded":
                refs.update(
                    filter(None, (obj.get("id"), _id(obj.get("invoice")), _id(obj.get("payment_intent"))))
                )
            elif event["type"].startswith("charge.dispute."):
                refs.update(filter(None, (_id(obj.get("charge")), _id(obj.get("payment_intent")))))
                txns.add(f"dispute:{obj['id']}")
        index = cls()
        if not refs or ledger.is_empty():
            return index
        clearing = ledger.filter(pl.col("account") == CLEARING)
        revenue = clearing.filter(pl.col("kind") == "revenue")
        for key in ("invoice_id", "charge_id", "payment_intent_id"):
            found = revenue.filter(pl.col(key).is_in(list(refs))).select(key, "model_id", "creator_id")
            index.owners.update({k: Owner(m, c) for k, m, c in found.iter_rows()})
        refunds = (
            clearing.filter((pl.col("kind") == "refund") & pl.col("charge_id").is_in(list(refs)))
            .group_by("charge_id")
            .agg(pl.col("amount_cents").sum())
        )
        index.refunded.update(dict(refunds.iter_rows()))
        index.txns.update(ledger.filter(pl.col("txn_id").is_in(list(txns)))["txn_id"].to_list())
        return index

    def add(self, entries: Sequence[Entry]) -> None:
        """Take newly posted entries into account for the events that follow them."""
        for e in entries:
            if e.account != CLEARING:
                continue
            self.txns.add(e.txn_id)
            if e.kind == "revenue" and e.model_id:
                for key in (e.invoice_id, e.charge_id, e.payment_intent_id):
                    if key:
                        self.owners[key] = Owner(e.model_id, e.creator_id)
            elif e.kind == "refund" and e.charge_id:
                self.refunded[e.charge_id] = self.refunded.get(e.charge_id, 0) + e.amount_cents


def _booked_at(event: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(event["created"], dt.UTC)


def _revenue(event: Mapping[str, Any]) -> list[Entry]:
    invoice = event["data"]["object"]
    amount = int(invoice["amount_paid"])
    if amount == 0:
        return []
    owner = invoice_owner(invoice)
    if owner is None:
        raise UnpostableEvent(
            f"invoice {invoice['id']} carries no {META_MODEL}/{META_CREATOR} subscription metadata"
        )
    charge, intent = invoice_payment_ids(invoice)
    creator, platform = split(amount)
    return transaction(
        f"invoice:{invoice['id']}",
        "revenue",
        {CLEARING: -amount, creator_account(owner.creator_id): creator, PLATFORM: platform},
        booked_at=_booked_at(event),
        creator_id=owner.creator_id,
        model_id=owner.model_id,
        source_id=event["id"],
        invoice_id=invoice["id"],
        charge_id=charge,
        payment_intent_id=intent,
    )


def _owner_of_charge(ids: Iterable[str | None], index: LedgerIndex, what: str) -> Owner:
    for key in ids:
        if key and key in index.owners:
            return index.owners[key]
    raise UnpostableEvent(f"{what} refers to a payment whose revenue is not booked yet")


def _reversal(
    txn_id: str,
    kind: Kind,
    cents: int,
    owner: Owner,
    *,
    already: int = 0,
    give_back: bool = False,
    **where: Any,
) -> list[Entry]:
    """Take ``cents`` of revenue back from the creator and the platform (``give_back`` returns them).

    The split is that of the cumulative reversed amount minus that of the ``already`` reversed part,
    so successive partial reversals add up to exactly the original split.
    """
    creator = split(already + cents)[0] - split(already)[0]
    sign = -1 if give_back else 1
    legs = {
        creator_account(owner.creator_id): -sign * creator,
        PLATFORM: -sign * (cents - creator),
        CLEARING: sign * cents,
    }
    return transaction(txn_id, kind, legs, creator_id=owner.creator_id, model_id=owner.model_id, **where)


def _refund(event: Mapping[str, Any], index: LedgerIndex) -> list[Entry]:
    charge = event["data"]["object"]
    target = int(charge["amount_refunded"])
    already = index.refunded.get(charge["id"], 0)
    if target <= already:
        return []
    invoice, intent = charge.get("invoice"), _id(charge.get("payment_intent"))
    owner = (invoice_owner(invoice) if isinstance(invoice, Mapping) else None) or _owner_of_charge(
        (charge["id"], _id(invoice), intent), index, f"refund of {charge['id']}"
    )
    return _reversal(
        f"refund:{charge['id']}:{target}",
        "refund",
        target - already,
        owner,
        already=already,
        booked_at=_booked_at(event),
        source_id=event["id"],
        invoice_id=_id(invoice),
        charge_id=charge["id"],
        payment_intent_id=intent,
    )


def _dispute(event: Mapping[str, Any], index: LedgerIndex) -> list[Entry]:
    dispute = event["data"]["object"]
    kind = event["type"]
    reverses = kind in _DISPUTE_REVERSAL_EVENTS and not dispute["status"].startswith(_INQUIRY_PREFIX)
    reinstates = kind == "charge.dispute.funds_reinstated" or (
        kind == "charge.dispute.closed" and dispute["status"] == "won"
    )
    if not (reverses or reinstates):
        return []
    if reinstates and f"dispute:{dispute['id']}" not in index.txns:
        raise UnpostableEvent(f"reinstatement of dispute {dispute['id']} before the dispute itself")
    charge, intent = _id(dispute.get("charge")), _id(dispute.get("payment_intent"))
    owner = _owner_of_charge((charge, intent), index, f"dispute {dispute['id']}")
    return _reversal(
        f"dispute:{dispute['id']}" if reverses else f"dispute_reinstated:{dispute['id']}",
        "dispute" if reverses else "dispute_reinstated",
        int(dispute["amount"]),
        owner,
        give_back=reinstates,
        booked_at=_booked_at(event),
        source_id=event["id"],
        charge_id=charge,
        payment_intent_id=intent,
    )


def entries_for_event(event: Mapping[str, Any], index: LedgerIndex | None = None) -> list[Entry]:
    """The entries one Stripe event posts (empty for events that move no money).

    ``index`` is what the ledger already knows (:meth:`LedgerIndex.of`); revenue needs none, refunds
    and disputes need it to find their model and creator. Raises :class:`UnpostableEvent`.
    """
    kind = event["type"]
    if kind not in _EVENT_TYPES:
        return []
    if kind == "invoice.paid":
        return _revenue(event)
    index = index or LedgerIndex()
    if kind == "charge.refunded":
        return _refund(event, index)
    return _dispute(event, index)


def to_frame(entries: Iterable[Entry]) -> pl.DataFrame:
    return pl.DataFrame([dataclasses.asdict(e) for e in entries], schema=LEDGER)


def empty_ledger() -> pl.DataFrame:
    return pl.DataFrame(schema=LEDGER)


def post(ledger: pl.DataFrame, entries: pl.DataFrame | Iterable[Entry]) -> pl.DataFrame:
    """``ledger`` followed by the entries whose ids it does not hold yet (append-only, idempotent)."""
    new = entries if isinstance(entries, pl.DataFrame) else to_frame(entries)
    new = new.unique("entry_id", keep="first", maintain_order=True).join(
        ledger.select("entry_id"), on="entry_id", how="anti"
    )
    return pl.concat([ledger, new.select(list(LEDGER))])


@dataclass(frozen=True)
class Posting:
    """The result of :func:`post_events`."""

    ledger: pl.DataFrame
    """The previous entries followed by the new ones."""
    new_entries: pl.DataFrame
    pending: dict[str, str]
    """Event id -> why it cannot be posted yet; pass these events again on a later run."""


def event_order(event: Mapping[str, Any]) -> tuple[int, str]:
    """Stripe events in the order they happened: ``created`` seconds, then id."""
    return event["created"], event["id"]


def post_events(ledger: pl.DataFrame, events: Iterable[Mapping[str, Any]]) -> Posting:
    """Post a batch of Stripe events (any order, repeats allowed) onto ``ledger``.

    Events are applied in :func:`event_order`, so a refund in the same batch as its invoice finds it;
    events already posted add nothing.
    """
    batch = sorted({e["id"]: e for e in events}.values(), key=event_order)
    index = LedgerIndex.of(ledger, batch)
    posted: list[Entry] = []
    pending: dict[str, str] = {}
    for event in batch:
        try:
            entries = entries_for_event(event, index)
        except UnpostableEvent as exc:
            pending[event["id"]] = str(exc)
            continue
        index.add(entries)
        posted.extend(entries)
    updated = post(ledger, posted)
    return Posting(updated, updated.slice(ledger.height), pending)


def balances(entries: pl.DataFrame, as_of: dt.datetime | None = None) -> pl.DataFrame:
    """``account, balance_cents`` over entries booked before ``as_of`` (all when None)."""
    if as_of is not None:
        entries = entries.filter(pl.col("booked_at") < as_of)
    return (
        entries.group_by("account").agg(pl.col("amount_cents").sum().alias("balance_cents")).sort("account")
    )


def unbalanced(entries: pl.DataFrame) -> pl.DataFrame:
    """Transactions whose entries do not sum to zero (``txn_id, amount_cents``): empty when sound."""
    return (
        entries.group_by("txn_id")
        .agg(pl.col("amount_cents").sum())
        .filter(pl.col("amount_cents") != 0)
        .sort("txn_id")
    )
