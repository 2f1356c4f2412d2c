"""The commitments' store (SPEC 9): batch objects, their leaves, per-model chain positions and day
roots under ``commitments/`` (keys: ``stores/layout.py``), every object written create-if-absent
through :meth:`Lake.put_new` and never rewritten, so the prefix can sit under S3 Object Lock.

A batch's leaves object is written before the batch object, so a batch always has its leaves; a
model's chain position is claimed before the batch is written (the batch holds the new chain value),
so two runs never extend a chain from the same value: the loser of a claim reads the winner's value
and claims the next position. The batch object is stored as its canonical JSON, the exact bytes its
digest covers.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from domain.compliance.commitments import ZERO_CHAIN, canonical_json, next_chain
from stores.lake import Lake
from stores.layout import (
    COMMITMENT_BATCHES,
    commitment_batch_key,
    commitment_batches_prefix,
    commitment_chain_key,
    commitment_chain_prefix,
    commitment_day_key,
    commitment_leaves_key,
    parse_commitment_batch_key,
    parse_commitment_chain_key,
)

RunKind = Literal["record", "on_demand"]
"""``record``: the run's picks are the model's stored record (scheduled and record runs);
``on_demand``: picks shown to a caller, committed but not stored in the record."""
CLAIM_ATTEMPTS = 100


@dataclass(frozen=True)
class ChainLink:
    """Position ``position`` of a model's chain: the batch that extended it and the values."""

    model_id: str
    position: int
    day: dt.date
    batch_id: str
    previous: str
    root: str
    chain: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "position": self.position,
            "day": self.day.isoformat(),
            "batch_id": self.batch_id,
            "previous": self.previous,
            "root": self.root,
            "chain": self.chain,
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ChainLink:
        return cls(**{**row, "day": dt.date.fromisoformat(row["day"])})


def _chain_keys(lake: Lake, model_id: str) -> list[str]:
    return sorted(
        k for k in lake.list_keys(commitment_chain_prefix(model_id)) if parse_commitment_chain_key(k)
    )


def read_chain(lake: Lake, model_id: str) -> list[ChainLink]:
    """Every claimed position of the model's chain, in order."""
    return [ChainLink.from_dict(json.loads(lake.get_bytes(k))) for k in _chain_keys(lake, model_id)]


def last_link(lake: Lake, model_id: str) -> ChainLink | None:
    keys = _chain_keys(lake, model_id)
    return ChainLink.from_dict(json.loads(lake.get_bytes(keys[-1]))) if keys else None


def claim_link(lake: Lake, model_id: str, day: dt.date, batch_id: str, root: str) -> ChainLink:
    """Claim the model's next chain position for ``root`` (create-if-absent, retried past positions
    another run claimed first)."""
    for _ in range(CLAIM_ATTEMPTS):
        last = last_link(lake, model_id)
        previous, position = (last.chain, last.position + 1) if last else (ZERO_CHAIN, 1)
        link = ChainLink(model_id, position, day, batch_id, previous, root, next_chain(previous, root))
        if lake.put_new(
            commitment_chain_key(model_id, link.position), canonical_json(link.as_dict()).encode()
        ):
            return link
    raise RuntimeError(f"could not claim a chain position of {model_id} in {CLAIM_ATTEMPTS} attempts")


def write_leaves(
    lake: Lake, day: dt.date, batch_id: str, run: RunKind, models: dict[str, list[dict]]
) -> None:
    """The leaves of a batch per model (``{"key", "leaf", "cut_off"}`` each), before the batch."""
    body = canonical_json({"run": run, "models": models}).encode()
    if not lake.put_new(commitment_leaves_key(day, batch_id), body):
        raise FileExistsError(f"batch {batch_id} already has leaves")


def write_batch(lake: Lake, day: dt.date, batch_id: str, obj: dict[str, Any]) -> None:
    """The batch object as its canonical JSON, created once."""
    if not lake.put_new(commitment_batch_key(day, batch_id), canonical_json(obj).encode()):
        raise FileExistsError(f"batch {batch_id} already exists")


@dataclass(frozen=True)
class StoredBatch:
    day: dt.date
    batch_id: str
    raw: bytes
    """The object's bytes as stored (what a verifier digests)."""

    @property
    def obj(self) -> dict[str, Any]:
        return json.loads(self.raw)


def day_batches(lake: Lake, day: dt.date) -> list[StoredBatch]:
    """The batch objects of picks on ``day``'s games, in the order they were written."""
    found = [(parse_commitment_batch_key(k), k) for k in lake.list_keys(commitment_batches_prefix(day))]
    return [
        StoredBatch(p.day, p.batch_id, lake.get_bytes(k)) for p, k in sorted(found, key=lambda f: f[1]) if p
    ]


def read_batch(lake: Lake, day: dt.date, batch_id: str) -> StoredBatch | None:
    key = commitment_batch_key(day, batch_id)
    return StoredBatch(day, batch_id, lake.get_bytes(key)) if lake.exists(key) else None


def read_leaves(lake: Lake, day: dt.date, batch_id: str) -> dict[str, Any]:
    """``{"run", "models": {model_id: [{"key", "leaf", "cut_off"}]}}``; empty when absent."""
    key = commitment_leaves_key(day, batch_id)
    return json.loads(lake.get_bytes(key)) if lake.exists(key) else {"run": "record", "models": {}}


def batch_days(lake: Lake) -> list[dt.date]:
    """Every day with at least one batch, in order."""
    days = {p.day for k in lake.list_keys(COMMITMENT_BATCHES) if (p := parse_commitment_batch_key(k))}
    return sorted(days)


def publish_day(lake: Lake, day: dt.date, root_object: dict[str, Any]) -> bool:
    """The day's root object, created once; False when it was already published."""
    return lake.put_new(commitment_day_key(day), canonical_json(root_object).encode())


def read_day(lake: Lake, day: dt.date) -> dict[str, Any] | None:
    key = commitment_day_key(day)
    return json.loads(lake.get_bytes(key)) if lake.exists(key) else None
