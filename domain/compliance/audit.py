"""The audit log's records (SPEC 9): one per operator or money action, never changed or deleted.

A record names who acted (a user id, ``operator:{name}``, ``pipeline`` or ``stripe``), what they did
(``review.approved``, ``model.suspended``, ``refund.created``, ``payout.transferred``,
``account.updated``, ``terms.accepted``, ``self_exclusion.started``, ...), when, on which object, and
the object's relevant state before and after (JSON, ``null`` where there was none). Its id is derived
from the action's business key (``payout:{creator}:{month}``, ``refund:{subscription}``, a Stripe event
id, ...), so retrying an action, or re-running the step that took it, appends nothing: the store
writes each id create-if-absent.

The ``audit`` table is the union of every record ever stored (:func:`merge_records`): a record is
added once and never replaced, so re-folding the inbox changes nothing that is already there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from domain.tables.schemas import UTC_TS, conform

AUDIT: dict[str, pl.DataType] = {
    "record_id": pl.String(),
    "acted_at": UTC_TS,
    "actor": pl.String(),
    "action": pl.String(),
    "object_type": pl.String(),
    "object_id": pl.String(),
    "before": pl.String(),
    "after": pl.String(),
    "business_key": pl.String(),
}
"""The ``audit`` table: ``before`` and ``after`` are canonical JSON text (keys sorted)."""

ACTION = re.compile(r"[a-z_]+\.[a-z_]+")
"""``{object}.{verb}``: ``review.approved``, ``payout.awaiting_onboarding``."""


@dataclass(frozen=True)
class AuditRecord:
    """One action; :attr:`record_id` is a digest of :attr:`business_key`."""

    business_key: str
    acted_at: dt.datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.business_key:
            raise ValueError("an audit record needs a business key (what makes a retried action the same)")
        if not ACTION.fullmatch(self.action):
            raise ValueError(f"audit action {self.action!r} is not of the form object.verb")
        if not (self.actor and self.object_type and self.object_id):
            raise ValueError(f"audit record {self.business_key!r} needs an actor, an object type and an id")
        if self.acted_at.tzinfo is None:
            raise ValueError(f"audit record {self.business_key!r}: the time must be timezone-aware")

    @property
    def record_id(self) -> str:
        return record_id_of(self.business_key)

    def row(self) -> dict[str, Any]:
        """The record as a row of :data:`AUDIT`."""
        return {
            "record_id": self.record_id,
            "acted_at": self.acted_at.astimezone(dt.UTC),
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "before": _canonical(self.before),
            "after": _canonical(self.after),
            "business_key": self.business_key,
        }


def record_id_of(business_key: str) -> str:
    """The id of the record of ``business_key``: what makes a retried action land on the same id."""
    return hashlib.sha256(business_key.encode()).hexdigest()[:32]


def merge_records(table: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """``table`` with the records of ``new`` it lacks, oldest first: a record already in ``table``
    is kept as it is, so folding the same records again changes nothing."""
    merged = pl.concat([conform(table, AUDIT), conform(new, AUDIT)])
    return merged.unique("record_id", keep="first", maintain_order=True).sort("acted_at", "record_id")


def id_problems(table: pl.DataFrame) -> list[str]:
    """Why ``table``'s records cannot be trusted: an id stored twice, or an id that is not the
    digest of its record's business key (the record was edited, or written by hand)."""
    problems = []
    repeated = table.height - table["record_id"].n_unique()
    if repeated:
        problems.append(f"{repeated} record ids occur more than once")
    foreign = [
        rid for rid, key in table.select("record_id", "business_key").iter_rows() if rid != record_id_of(key)
    ]
    if foreign:
        problems.append(f"{len(foreign)} record ids are not their business key's digest, e.g. {foreign[0]}")
    return problems


def change_summary(before: str | None, after: str | None, width: int = 80) -> str:
    """``before -> after`` of a record in one line: the keys whose values differ (``status:
    pending_review→listed``), or the whole state where there was none on one side."""
    old, new = _state(before), _state(after)
    if old is not None and new is not None:
        changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
        text = ", ".join(f"{k}: {_value(old.get(k))}→{_value(new.get(k))}" for k in changed) or "unchanged"
    elif new is not None:
        text = f"→ {_pairs(new)}"
    elif old is not None:
        text = f"{_pairs(old)} →"
    else:
        text = ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _state(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


def _pairs(state: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in sorted(state.items()))


def _value(value: Any) -> str:
    return "-" if value is None else value if isinstance(value, str) and value else json.dumps(value)


def _canonical(state: dict[str, Any] | None) -> str | None:
    return None if state is None else json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
