"""Operators' reviews of paid models (SPEC 6), kept in the inbox: one object per decided version
(``inbox/reviews/{model_id}/``, see ``stores/layout.py``).

A decision names the version and the price it was made at (``domain.marketplace.listing`` decides what it
covers). Re-deciding a version replaces its object: the operator's latest word on a version counts.
``oddsforge review`` writes here; the ``model_status`` asset and the API read here.

Each decision also appends an audit record (SPEC 9, ``stores.audit``): the operator, the model's
previous decision and the new one. The record is written first, as a payout's intent is, and its
business key names the decision it replaces, so a decision retried after a crash between the two
writes leaves one record, while deciding again later (a new reason, a reversal) leaves another.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from domain.compliance.audit import AuditRecord
from domain.errors import UserError
from domain.marketplace.listing import REVIEWS, SUSPENSIONS, Decision, latest_versions, listing_status
from domain.models.registry import MODEL_VERSIONS
from stores.audit import append
from stores.lake import Lake
from stores.layout import REVIEWS_INBOX, parse_review_key, review_key, reviews_prefix, table_key
from stores.registry import RegistryStore

_READ_THREADS = 16


class ReviewStore:
    """Review decisions in the inbox of one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def record(
        self,
        model_id: str,
        version: int,
        price_cents: int,
        decision: Decision,
        reason: str,
        reviewer: str,
        now: dt.datetime,
    ) -> dict[str, Any]:
        """Store the decision on ``version`` of ``model_id`` (made at ``price_cents``), with its audit
        record, and return it."""
        review = {
            "model_id": model_id,
            "version": version,
            "price_cents": price_cents,
            "decision": decision,
            "reason": reason,
            "reviewer": reviewer,
            "decided_at": now.isoformat(),
        }
        append(self.lake, review_audit_record(self.latest(model_id), review))
        self.lake.put_bytes(review_key(model_id, version), json.dumps(review, sort_keys=True).encode())
        return review

    def latest(self, model_id: str) -> dict[str, Any] | None:
        """The model's decision that counts now (on its highest reviewed version), as stored."""
        keys = [key for key, _ in self.listing(model_id)]
        return json.loads(self.lake.get_bytes(keys[-1])) if keys else None

    def decisions(self, keys: list[str]) -> pl.DataFrame:
        """The decisions stored at ``keys`` (:data:`REVIEWS`)."""
        with ThreadPoolExecutor(_READ_THREADS) as pool:
            rows = [json.loads(blob) for blob in pool.map(self.lake.get_bytes, keys)]
        for row in rows:
            row["decided_at"] = dt.datetime.fromisoformat(row["decided_at"])
        return pl.DataFrame(rows, schema=REVIEWS)

    def listing(self, model_id: str) -> list[tuple[str, float]]:
        """``(key, modification time)`` of the model's decisions: what changes when one is made."""
        listed = self.lake.list_objects(reviews_prefix(model_id))
        return [(k, t) for k, t in listed if parse_review_key(k) is not None]

    def table(self) -> pl.DataFrame:
        """Every decision (:data:`REVIEWS`)."""
        return self.decisions(
            [k for k in self.lake.list_keys(REVIEWS_INBOX) if parse_review_key(k) is not None]
        )


def review_audit_record(previous: dict[str, Any] | None, review: dict[str, Any]) -> AuditRecord:
    """The audit record of ``review`` (a stored decision), which replaces ``previous`` (the model's
    decision that counted until now, or None)."""

    def state(decision: dict[str, Any]) -> dict[str, Any]:
        return {k: decision[k] for k in ("decision", "version", "price_cents", "reason")}

    replaced = "none" if previous is None else f"v{previous['version']}@{previous['decided_at']}"
    return AuditRecord(
        business_key=f"review:{review['model_id']}:v{review['version']}:{review['decision']}:after:{replaced}",
        acted_at=dt.datetime.fromisoformat(review["decided_at"]),
        actor=f"operator:{review['reviewer']}",
        action="review.approved" if review["decision"] == "approve" else "review.rejected",
        object_type="model",
        object_id=review["model_id"],
        before=None if previous is None else state(previous),
        after=state(review),
    )


class ReviewError(UserError):
    """The model cannot be reviewed (no such model, or nothing to review)."""


def review_queue(lake: Lake, include_decided: bool = False) -> pl.DataFrame:
    """Paid public models as the ``model_versions`` table last saw them, with their listing status
    (:data:`domain.marketplace.listing.MODEL_STATUS` columns): those awaiting review, or every one."""
    key = table_key("model_versions")
    versions = lake.read_parquet([key]) if lake.exists(key) else pl.DataFrame(schema=MODEL_VERSIONS)
    latest = latest_versions(versions).filter(pl.col("public") & (pl.col("price_cents") > 0))
    status = listing_status(latest, ReviewStore(lake).table(), pl.DataFrame(schema=SUSPENSIONS))
    return status if include_decided else status.filter(pl.col("status") == "pending_review")


def decide(
    lake: Lake, model_id: str, decision: Decision, reason: str, reviewer: str, now: dt.datetime
) -> dict[str, Any]:
    """Record an operator's decision on the latest version of a paid public model, at its price."""
    registry = RegistryStore(lake)
    state = registry.state(model_id)
    if state is None:
        raise ReviewError(f"no model with id {model_id!r}")
    row = registry.read(state, state.latest).row()
    if state.archived or not row["public"] or row["price_cents"] <= 0:
        raise ReviewError(
            f"model {model_id!r} v{state.latest} is not a paid public model (public={row['public']}, "
            f"price_cents={row['price_cents']}, status={state.status}): only those are reviewed"
        )
    return ReviewStore(lake).record(
        model_id, state.latest, row["price_cents"], decision, reason, reviewer, now
    )
