"""Committing picks (SPEC 9): every run that makes picks for shared models commits them as one batch
per game date before their cut-off, and the day's root is published after its last cut-off.

Which picks: the qualifying analyses of model versions that are public (``sharing.public``). Listing
can follow later (a review, the end of a suspension), so every public version's record is committed
from its first run; private models are never committed. A pick's ``cut_off`` is its game's
``commence_time``: after it a pick is a result, not a prediction.

Late picks are never committed: a pick whose cut-off is at or before the commit time (a backfill, a
record run at each game's start, a slate already under way) stays in the record uncommitted, counted
in the run's log, and ``oddsforge verify`` names it. A run of the record (scheduled or record
runs) that would change a committed pick (another leaf for the same model, version, game, bookmaker
and market, or no longer picking it) raises an alert and changes nothing: the committed rows stay in
the stored analyses and no object is written for them. On-demand runs commit what they showed the
caller in batches of their own (``run: on_demand`` in the leaves object), which are not the record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from domain.compliance.commitments import Pick, batch_digest, batch_object, day_root, merkle_root, utc_z
from domain.models.engine import ANALYSES
from domain.sports import SPORTS
from domain.tables.schemas import GAMES
from stores.alerts import Alert, raise_alert
from stores.commitments import (
    RunKind,
    batch_days,
    claim_link,
    day_batches,
    publish_day,
    read_day,
    read_leaves,
    write_batch,
    write_leaves,
)
from stores.lake import Lake
from stores.layout import batch_id as make_batch_id

Clock = Callable[[], dt.datetime]
log = logging.getLogger(__name__)
PICK_KEY = ["model_id", "version", "game_id", "bookmaker", "market"]


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Commit:
    """What committing one run's picks of one day did."""

    analyses: pl.DataFrame
    """The analyses to store: the run's, with committed picks it would have changed kept as stored."""
    batch_id: str | None = None
    committed: int = 0
    late: int = 0
    """Picks not committed because their cut-off had passed."""
    conflicts: list[tuple] = field(default_factory=list)
    """Keys of committed picks the run would have changed (an alert was raised)."""


def pick_rows(analyses: pl.DataFrame, games: pl.DataFrame, models: set[str]) -> list[Pick]:
    """The qualifying analyses of ``models`` as picks, cut off at their game's start (an analysis
    without a side, price or confidence is no pick anyone could take)."""
    complete = pl.all_horizontal(pl.col("pick", "pick_price", "confidence").is_not_null())
    rows = analyses.filter(pl.col("qualifies") & complete & pl.col("model_id").is_in(list(models))).join(
        games.select("game_id", "commence_time"), on="game_id", how="inner"
    )
    return [
        Pick(
            r["model_id"],
            r["version"],
            r["game_id"],
            r["bookmaker"],
            r["market"],
            r["pick"],
            r["line"],
            r["pick_price"],
            r["confidence"],
            r["commence_time"],
        )
        for r in rows.iter_rows(named=True)
    ]


def committed_leaves(lake: Lake, day: dt.date, run: RunKind | None = None) -> dict[tuple, str]:
    """Pick key -> leaf of every pick committed for ``day`` (by runs of ``run`` only, if given)."""
    found = {}
    for stored in day_batches(lake, day):
        leaves = read_leaves(lake, day, stored.batch_id)
        if run is not None and leaves["run"] != run:
            continue
        for entries in leaves["models"].values():
            found.update({tuple(e["key"]): e["leaf"] for e in entries})
    return found


def _conflicts(picks: list[Pick], scored: set[str], committed: dict[tuple, str]) -> list[tuple]:
    """Committed keys of the scored models that the run does not reproduce leaf for leaf."""
    new = {p.key: p.leaf() for p in picks}
    return sorted(k for k, leaf in committed.items() if k[0] in scored and new.get(k) != leaf)


def _alert(lake: Lake, day: dt.date, conflicts: list[tuple], now: dt.datetime) -> None:
    digest = hashlib.sha256(repr((day, conflicts)).encode()).hexdigest()[:16]
    raise_alert(
        lake,
        Alert(
            alert_id=f"commitment-conflict-{day.isoformat()}-{digest}",
            kind="commitment_conflict",
            summary=f"a run would change {len(conflicts)} committed pick(s) of {day}; nothing was changed",
            raised_at=now,
            details={"day": day.isoformat(), "picks": [list(k) for k in conflicts[:50]]},
        ),
    )


def _keep_committed(
    lake: Lake, sport: str, day: dt.date, analyses: pl.DataFrame, keys: list[tuple]
) -> pl.DataFrame:
    """``analyses`` with the rows of ``keys`` taken from the stored partition instead."""
    frame = pl.DataFrame(
        [dict(zip(PICK_KEY, k, strict=True)) for k in keys], schema=analyses.select(PICK_KEY).schema
    )
    stored = lake.read_table("analyses", sport, day, day + dt.timedelta(days=1), dict(analyses.schema))
    return pl.concat(
        [analyses.join(frame, on=PICK_KEY, how="anti"), stored.join(frame, on=PICK_KEY, how="semi")]
    )


def write_commitment(
    lake: Lake, day: dt.date, picks: list[Pick], written_at: dt.datetime, run: RunKind
) -> str:
    """One batch of ``picks`` (all on time): leaves, then each model's chain position, then the batch."""
    batch = make_batch_id(written_at, os.urandom(4).hex())
    by_model: dict[str, list[Pick]] = {}
    for pick in picks:
        by_model.setdefault(pick.model_id, []).append(pick)
    leaves = {
        m: [{"key": list(p.key), "leaf": p.leaf(), "cut_off": utc_z(p.cut_off)} for p in ps]
        for m, ps in sorted(by_model.items())
    }
    write_leaves(lake, day, batch, run, leaves)
    roots = {m: merkle_root([e["leaf"] for e in entries]) for m, entries in leaves.items()}
    chains = {m: claim_link(lake, m, day, batch, root).chain for m, root in roots.items()}
    write_batch(lake, day, batch, batch_object(roots, chains, written_at))
    return batch


def commit_picks(
    lake: Lake,
    sport: str,
    day: dt.date,
    analyses: pl.DataFrame,
    models: set[str],
    clock: Clock = wall_clock,
    run: RunKind = "record",
) -> Commit:
    """Commit the run's picks of ``day`` for ``models``: new picks whose cut-off is still ahead go
    into one batch; a record run that would change a committed pick raises an alert and keeps it."""
    if analyses.is_empty() or not models & set(analyses["model_id"].unique()):
        return Commit(analyses)
    games = lake.read_table("games", sport, day, day + dt.timedelta(days=1), GAMES)
    picks = pick_rows(analyses, games, models)
    now = clock()
    committed = committed_leaves(lake, day, "record" if run == "record" else None)
    conflicts = (
        _conflicts(picks, set(analyses["model_id"].unique()) & models, committed) if run == "record" else []
    )
    if conflicts:
        _alert(lake, day, conflicts, now)
        analyses = _keep_committed(lake, sport, day, analyses, conflicts)
    # The record commits a pick once per key; an on-demand run commits what it showed unless identical.
    seen = set(committed.values())
    fresh = [p for p in picks if (p.key not in committed if run == "record" else p.leaf() not in seen)]
    on_time = [p for p in fresh if now < p.cut_off]
    late = len(fresh) - len(on_time)
    if not on_time:
        return Commit(analyses, late=late, conflicts=conflicts)
    batch = write_commitment(lake, day, on_time, now, run)
    return Commit(analyses, batch, len(on_time), late, conflicts)


def public_models(versions: pl.DataFrame) -> set[str]:
    """The models whose scored version is public: the ones whose picks are committed."""
    return set(versions.filter(pl.col("public"))["model_id"])


def commit_run(
    lake: Lake, versions: pl.DataFrame, sport: str, day: dt.date, analyses: pl.DataFrame
) -> Commit:
    """What the daily analyses asset calls for each day it scores: commit, and say what to store."""
    done = commit_picks(lake, sport, day, analyses, public_models(versions))
    if done.committed or done.late or done.conflicts:
        log.info(
            "%s %s: %d picks committed (batch %s), %d late (not committed), %d committed picks kept",
            sport,
            day,
            done.committed,
            done.batch_id,
            done.late,
            len(done.conflicts),
        )
    return done


# ---- day roots -------------------------------------------------------------------------------------


def last_cut_off(lake: Lake, day: dt.date) -> dt.datetime | None:
    """The latest game start of ``day`` in any sport: no pick of the day can be committed after it."""
    starts = [
        lake.read_table("games", sport, day, day + dt.timedelta(days=1), GAMES)["commence_time"].max()
        for sport in SPORTS
    ]
    found = [s for s in starts if s is not None]
    return max(found) if found else None  # type: ignore[type-var]


def publish_day_root(lake: Lake, day: dt.date, now: dt.datetime) -> bool:
    """Publish ``day``'s root once its last cut-off has passed; False if not yet (or already)."""
    last = last_cut_off(lake, day)
    if read_day(lake, day) is not None or (last is not None and now <= last):
        return False
    batches = day_batches(lake, day)
    if not batches:
        return False
    digests = [batch_digest(b.obj) for b in batches]
    return publish_day(
        lake,
        day,
        {
            "date": day.isoformat(),
            "batches": [{"batch_id": b.batch_id, "digest": d} for b, d in zip(batches, digests, strict=True)],
            "root": day_root(digests),
            "written_at": utc_z(now),
        },
    )


def publish_day_roots(lake: Lake, now: dt.datetime) -> list[dt.date]:
    """Every day with batches whose root is due and not yet published; returns the days published."""
    return [day for day in batch_days(lake) if publish_day_root(lake, day, now)]


# ---- the demo's season --------------------------------------------------------------------------


REPLAY_LEAD = dt.timedelta(hours=1)
"""The demo commits each day's picks this long before the day's first game."""


def replay_commitments(lake: Lake, sport: str, start: dt.date, end: dt.date, versions: pl.DataFrame) -> int:
    """Commit the stored analyses of ``start..end`` as if each day's run had committed them
    :data:`REPLAY_LEAD` before its first game, then publish each day's root after its last game:
    ``oddsforge demo`` plays a past season, so its clock is simulated (the time written in each
    object says so). Returns the picks committed; re-running commits nothing more."""
    committed = 0
    day = start
    while day <= end:
        analyses = lake.read_table("analyses", sport, day, day + dt.timedelta(days=1), ANALYSES)
        games = lake.read_table("games", sport, day, day + dt.timedelta(days=1), GAMES)
        if analyses.height and games.height:
            first = games["commence_time"].min()
            at = first - REPLAY_LEAD  # type: ignore[operator]
            committed += commit_picks(
                lake, sport, day, analyses, public_models(versions), lambda at=at: at
            ).committed
            last = last_cut_off(lake, day)
            if last is not None:
                publish_day_root(lake, day, last + dt.timedelta(minutes=1))
        day += dt.timedelta(days=1)
    return committed
