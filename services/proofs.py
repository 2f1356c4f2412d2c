"""Proofs of a model's record (SPEC 9), as the API serves them and ``oddsforge verify`` checks them.

:func:`day_commitments` is what anyone may read of a day: the published day root (the digests it was
built over) and every stored batch object as stored. :func:`model_proofs` is what a reader of the
model gets: each qualifying pick of the record (the stored analyses, not the commitment) with its
canonical JSON and leaf, and, when that leaf was committed, its batch and inclusion path; plus every
batch of the model on those days with all of its leaves (digests reveal no pick) and its chain
links. Nothing here trusts that record and commitments agree: an edited, inserted or deleted pick
shows as a pick without a batch or a leaf without a pick, which the verifier names.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from domain.compliance.commitments import inclusion_paths, leaf_hash
from services.commitments import pick_rows
from stores.commitments import day_batches, read_chain, read_day, read_leaves
from stores.lake import Lake


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def day_commitments(lake: Lake, day: dt.date) -> dict[str, Any]:
    """The day's published root (or None before it is due) and its stored batch objects."""
    return {
        "date": day,
        "day_root": read_day(lake, day),
        "batches": [{"batch_id": b.batch_id, "object": b.obj} for b in day_batches(lake, day)],
    }


def model_proofs(
    lake: Lake,
    model_id: str,
    sport: str,
    analyses: pl.DataFrame,
    games: pl.DataFrame,
    first: dt.date,
    last: dt.date,
) -> dict[str, Any]:
    """The model's picks over ``first..last`` (``analyses``: its stored rows; ``games``: their
    games, for each pick's cut-off) with their proofs, its batches and chain links of those days."""
    batches, where = [], {}
    for day in days_between(first, last):
        for stored in day_batches(lake, day):
            entries = read_leaves(lake, day, stored.batch_id)
            mine = entries["models"].get(model_id)
            if mine is None:
                continue
            leaves = [e["leaf"] for e in mine]
            batches.append(
                {
                    "batch_id": stored.batch_id,
                    "day": day,
                    "run": entries["run"],
                    "written_at": stored.obj["written_at"],
                    "root": stored.obj["roots"].get(model_id),
                    "chain": stored.obj["chains"].get(model_id),
                    "leaves": sorted(leaves),
                }
            )
            paths = inclusion_paths(leaves)
            where.update({leaf: (stored.batch_id, path) for leaf, path in paths.items()})
    picks = []
    dated = analyses.select("game_id", "game_date").unique()
    game_dates = dict(zip(dated["game_id"], dated["game_date"], strict=True))
    for pick in pick_rows(analyses, games, {model_id}):
        canonical = pick.canonical()
        leaf = leaf_hash(canonical)
        batch_id, path = where.get(leaf, (None, []))
        picks.append(
            {
                "pick": pick.fields(),
                "game_date": game_dates[pick.game_id],
                "canonical": canonical,
                "leaf": leaf,
                "batch_id": batch_id,
                "path": [{"sibling": s.sibling, "side": s.side} for s in path],
            }
        )
    chain = [link.as_dict() for link in read_chain(lake, model_id) if first <= link.day <= last]
    return {
        "model_id": model_id,
        "sport": sport,
        "first": first,
        "last": last,
        "picks": picks,
        "batches": batches,
        "chain": chain,
    }
