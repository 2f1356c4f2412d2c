"""Pick commitments (SPEC 9): canonical JSON, leaf hashes, Merkle roots and inclusion paths, per-model
hash chains, batch digests and the day's root.

A qualifying pick of a listed model is a leaf: SHA-256 of the canonical JSON of exactly
:data:`LEAF_FIELDS`. A run's picks are committed as one batch: per model the Merkle root of its leaves
(sorted by digest, parent = SHA-256 of the two raw digests, an odd node promoted unchanged) and the
model's next chain value SHA-256(previous || root), from 32 zero bytes. The batch object is
``{roots, chains, written_at}``; its digest is SHA-256 of its canonical JSON, and a day's root is the
Merkle root over its batches' digests. Everything here is pure, so the pipeline, the API and
``oddsforge verify`` (a subscriber's machine) run the same code; ``tests/test_commitments.py``
reproduces every digest of the worked example in ``../shared/data/commitments``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

LEAF_FIELDS = (
    "model_id",
    "version",
    "game_id",
    "bookmaker",
    "market",
    "pick",
    "line",
    "price",
    "confidence",
    "cut_off",
)
"""What a leaf commits to, and nothing else (SPEC 9)."""
ZERO_CHAIN = "00" * 32
"""The previous chain value of a model's first batch: 32 zero bytes."""
Side = Literal["left", "right"]


def canonical_json(value: Any) -> str:
    """UTF-8 JSON with sorted keys and no whitespace; numbers as JSON numbers (Python's shortest
    round-trip repr, so ``3.0`` stays ``3.0``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_z(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with ``Z`` (a naive time is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_utc_z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


@dataclass(frozen=True)
class Pick:
    """The committed fields of one qualifying analysis. ``cut_off`` is the game's start: after it a
    pick is a result, not a prediction, so a batch must be written before it."""

    model_id: str
    version: int
    game_id: str
    bookmaker: str
    market: str
    pick: str
    line: float | None
    price: float
    confidence: float
    cut_off: dt.datetime

    def fields(self) -> dict[str, Any]:
        """The leaf's JSON object: ``line`` null for h2h, times with ``Z``, floats as floats."""
        return {
            "model_id": self.model_id,
            "version": int(self.version),
            "game_id": self.game_id,
            "bookmaker": self.bookmaker,
            "market": self.market,
            "pick": self.pick,
            "line": None if self.market == "h2h" or self.line is None else float(self.line),
            "price": float(self.price),
            "confidence": float(self.confidence),
            "cut_off": utc_z(self.cut_off),
        }

    def canonical(self) -> str:
        return canonical_json(self.fields())

    def leaf(self) -> str:
        return leaf_hash(self.canonical())

    @property
    def key(self) -> tuple[str, int, str, str, str]:
        """What identifies the pick: a re-run producing another leaf for this key changes the record."""
        return (self.model_id, int(self.version), self.game_id, self.bookmaker, self.market)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Pick:
        """A pick from its leaf JSON object (exactly :data:`LEAF_FIELDS`)."""
        if set(fields) != set(LEAF_FIELDS):
            raise ValueError(f"a pick has exactly the fields {', '.join(LEAF_FIELDS)}")
        return cls(**{**fields, "cut_off": parse_utc_z(fields["cut_off"])})


def leaf_hash(canonical: str) -> str:
    return sha256_hex(canonical.encode())


def _parent(left: str, right: str) -> str:
    return sha256_hex(bytes.fromhex(left) + bytes.fromhex(right))


def _levels(leaves: list[str]) -> list[list[str]]:
    """Every level of the tree over ``leaves`` sorted by digest, leaves first, root last."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = sorted(leaves)
    levels = [level]
    while len(level) > 1:
        pairs = [_parent(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
        levels.append(level)
    return levels


def merkle_root(leaves: list[str]) -> str:
    """The root over ``leaves`` (hex digests; order does not matter: they are sorted first)."""
    return _levels(leaves)[-1][0]


@dataclass(frozen=True)
class Step:
    """One step of an inclusion path: the sibling's digest and the side it sits on."""

    sibling: str
    side: Side


def inclusion_path(leaves: list[str], leaf: str) -> list[Step]:
    """The siblings from ``leaf`` up to the root (levels where the node is promoted add no step)."""
    return inclusion_paths(leaves)[leaf]


def inclusion_paths(leaves: list[str]) -> dict[str, list[Step]]:
    """Every leaf's inclusion path, from one build of the tree."""
    levels = _levels(leaves)
    paths: dict[str, list[Step]] = {}
    for start, leaf in enumerate(levels[0]):
        index, path = start, []
        for level in levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(Step(level[sibling], "left" if sibling < index else "right"))
            index //= 2
        paths[leaf] = path
    return paths


def root_from_path(leaf: str, path: list[Step]) -> str:
    """The root that ``leaf`` and its inclusion path lead to."""
    node = leaf
    for step in path:
        node = _parent(step.sibling, node) if step.side == "left" else _parent(node, step.sibling)
    return node


def next_chain(previous: str, root: str) -> str:
    """A model's chain value after a batch: SHA-256(previous || root) over the raw digests."""
    return _parent(previous, root)


def batch_object(roots: dict[str, str], chains: dict[str, str], written_at: dt.datetime) -> dict[str, Any]:
    """The batch object as stored and digested: ``{roots, chains, written_at}``."""
    return {"roots": roots, "chains": chains, "written_at": utc_z(written_at)}


def batch_digest(obj: dict[str, Any]) -> str:
    """SHA-256 of the batch object's canonical JSON (only its three fields count)."""
    return sha256_hex(canonical_json({k: obj[k] for k in ("roots", "chains", "written_at")}).encode())


def day_root(batch_digests: list[str]) -> str:
    """The day's root: the Merkle root over its batches' digests."""
    return merkle_root(batch_digests)


def on_time(cut_off: dt.datetime, written_at: dt.datetime) -> bool:
    """Whether a batch written at ``written_at`` may commit a pick with this cut-off (strictly before)."""
    return written_at < cut_off
