"""``oddsforge verify``: check a model's record against its commitments with nothing but the API, as a
subscriber's machine would (SPEC 9).

:class:`ApiSource` fetches the model's proofs (``GET /models/{id}/proofs``), each day's published
commitments (``GET /commitments/{date}``), the final scores (``GET /sports/{sport}/games``) and the
figures the model page shows (``GET /models/{id}/performance``). :func:`check` then trusts none of
them: it recomputes every leaf from the pick's fields, every inclusion path, model root, batch
digest, day root and chain link, checks each batch was written before its picks' cut-offs (the
games' starts), re-grades every pick with the one grading rule (``domain/markets/grading.py``) and
compares the record's figures with the API's. The first thing that does not hold is named.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import polars as pl

from domain.compliance.commitments import (
    ZERO_CHAIN,
    Pick,
    Step,
    batch_digest,
    day_root,
    leaf_hash,
    merkle_root,
    next_chain,
    parse_utc_z,
    root_from_path,
)
from domain.markets.grading import grade, profit

FETCH_THREADS = 8
PROFIT_TOLERANCE = 1e-6


class VerificationError(Exception):
    """The first pick, link or figure that does not hold."""


@dataclass(frozen=True)
class Evidence:
    """Everything the verifier reads, as the API served it."""

    proofs: dict[str, Any]
    days: dict[str, dict[str, Any]]
    """``GET /commitments/{date}`` per game date of the model's batches, picks and chain links."""
    games: dict[str, dict[str, Any]]
    """Game id -> ``GET /sports/{sport}/games`` item."""
    figures: dict[int, dict[str, Any] | None]
    """Version -> the performance route's figures over the span (``window``)."""


@dataclass
class Report:
    model_id: str
    first: str
    last: str
    ok: bool
    failure: str | None = None
    picks: int = 0
    batches: int = 0
    days: int = 0
    chain_links: int = 0
    graded: int = 0
    wins: int = 0
    pushes: int = 0
    profit: float = 0.0
    seconds: float = 0.0
    versions: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ApiSource:
    """The API as a subscriber reaches it (bearer token optional for the public routes)."""

    def __init__(self, url: str, token: str | None = None, client: httpx.Client | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = client or httpx.Client(base_url=url, headers=headers, timeout=60)

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(path, params={k: v for k, v in params.items() if v is not None})
        if response.status_code != 200:
            raise VerificationError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def games(self, sport: str, day: str) -> list[dict[str, Any]]:
        items, cursor = [], None
        while True:
            page = self.get(f"/sports/{sport}/games", date=day, cursor=cursor, limit=100)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def evidence(self, model_id: str, first: dt.date | None, last: dt.date | None) -> Evidence:
        proofs = self.get(
            f"/models/{model_id}/proofs",
            **{"from": first and first.isoformat(), "to": last and last.isoformat()},
        )
        days = sorted(
            {b["day"] for b in proofs["batches"]}
            | {p["game_date"] for p in proofs["picks"]}
            | {link["day"] for link in proofs["chain"]}
        )
        versions = sorted({p["pick"]["version"] for p in proofs["picks"]})
        span = (dt.date.fromisoformat(proofs["last"]) - dt.date.fromisoformat(proofs["first"])).days + 1
        with ThreadPoolExecutor(FETCH_THREADS) as pool:
            day_docs = pool.map(lambda d: self.get(f"/commitments/{d}"), days)
            game_lists = pool.map(lambda d: self.games(proofs["sport"], d), days)
            reports = pool.map(
                lambda v: self.get(
                    f"/models/{model_id}/performance", to=proofs["last"], days=span, version=v
                ),
                versions,
            )
            return Evidence(
                proofs,
                dict(zip(days, day_docs, strict=True)),
                {g["game_id"]: g for games in game_lists for g in games},
                {v: r["window"] for v, r in zip(versions, reports, strict=True)},
            )


def _named(pick: dict[str, Any]) -> str:
    p = pick["pick"]
    where = f"{p['game_id']} {p['market']} {p['bookmaker']}"
    return f"pick {where} (version {p['version']}, {p['pick']} at {p['price']})"


def _check_days(evidence: Evidence) -> dict[str, dict[str, Any]]:
    """Every stored batch of the days, by id, once its day root (when published) accounts for it."""
    stored = {}
    for day, doc in sorted(evidence.days.items()):
        digests = {b["batch_id"]: batch_digest(b["object"]) for b in doc["batches"]}
        published = doc["day_root"]
        if published is not None:
            listed = {b["batch_id"]: b["digest"] for b in published["batches"]}
            if day_root(list(listed.values())) != published["root"]:
                raise VerificationError(f"day {day}: the published root is not the root of its batch digests")
            for batch_id, digest in digests.items():
                if listed.get(batch_id) != digest:
                    raise VerificationError(
                        f"batch {batch_id} of {day}: its object's digest is not in the day root "
                        "(rewritten or added later)"
                    )
            if missing := sorted(set(listed) - set(digests)):
                raise VerificationError(f"batch {missing[0]} of {day}: in the day root but no longer stored")
        stored.update({b["batch_id"]: b["object"] for b in doc["batches"]})
    return stored


def _check_batches(model_id: str, batches: list[dict[str, Any]], stored: dict[str, dict[str, Any]]) -> None:
    for batch in batches:
        obj = stored.get(batch["batch_id"])
        if obj is None:
            raise VerificationError(f"batch {batch['batch_id']}: not among the day's stored batches")
        root = merkle_root(batch["leaves"])
        if obj["roots"].get(model_id) != root:
            raise VerificationError(
                f"batch {batch['batch_id']}: the model's leaves do not make its committed root"
            )
        if obj["written_at"] != batch["written_at"] or obj["chains"].get(model_id) != batch["chain"]:
            raise VerificationError(f"batch {batch['batch_id']}: the proofs disagree with the stored batch")


def _check_chain(model_id: str, links: list[dict[str, Any]], batches: list[dict[str, Any]]) -> None:
    """Links chain from 32 zero bytes without a gap; every batch has its link. A link whose batch
    was never written (a run that died between claiming and writing) commits no pick: it only has to
    chain."""
    by_batch = {b["batch_id"]: b for b in batches}
    if missing := sorted(set(by_batch) - {link["batch_id"] for link in links}):
        raise VerificationError(f"batch {missing[0]}: extends no position of the model's chain")
    previous: dict[str, Any] | None = None
    for link in sorted(links, key=lambda k: k["position"]):
        name = f"chain link {link['position']} (batch {link['batch_id']})"
        if previous is None and link["position"] == 1 and link["previous"] != ZERO_CHAIN:
            raise VerificationError(f"{name}: the first link does not start from 32 zero bytes")
        if previous is not None and (
            link["position"] != previous["position"] + 1 or link["previous"] != previous["chain"]
        ):
            raise VerificationError(f"{name}: does not extend link {previous['position']}")
        batch = by_batch.get(link["batch_id"])
        if next_chain(link["previous"], link["root"]) != link["chain"]:
            raise VerificationError(f"{name}: SHA-256(previous || root) is not its chain value")
        if batch is not None and (link["root"] != batch["root"] or link["chain"] != batch["chain"]):
            raise VerificationError(f"{name}: the batch committed another root or chain value for {model_id}")
        previous = link


def _check_picks(evidence: Evidence, batches: dict[str, dict[str, Any]]) -> None:
    claimed: set[str] = set()
    for item in evidence.proofs["picks"]:
        pick = Pick.from_fields(item["pick"])
        if pick.canonical() != item["canonical"] or leaf_hash(item["canonical"]) != item["leaf"]:
            raise VerificationError(f"{_named(item)}: its canonical JSON or leaf does not match its fields")
        game = evidence.games.get(pick.game_id)
        if game is None or parse_utc_z(game["commence_time"]) != pick.cut_off:
            raise VerificationError(f"{_named(item)}: its cut-off is not its game's start")
        batch = batches.get(item["batch_id"] or "")
        if batch is None:
            raise VerificationError(f"{_named(item)}: not committed (edited, or added after its cut-off)")
        if not parse_utc_z(batch["written_at"]) < pick.cut_off:
            raise VerificationError(f"{_named(item)}: its batch was written after its cut-off")
        path = [Step(s["sibling"], s["side"]) for s in item["path"]]
        if root_from_path(pick.leaf(), path) != batch["root"]:
            raise VerificationError(f"{_named(item)}: its inclusion path does not reach the batch's root")
        claimed.add(pick.leaf())
    for batch in batches.values():
        if batch["run"] != "record":
            continue
        for leaf in batch["leaves"]:
            if leaf not in claimed:
                raise VerificationError(
                    f"batch {batch['batch_id']}: committed leaf {leaf} has no pick in the record "
                    "(a pick was deleted or changed)"
                )


def regrade(evidence: Evidence) -> pl.DataFrame:
    """Every pick with its result and profit, graded from the final scores served."""
    rows = []
    for item in evidence.proofs["picks"]:
        p, game = item["pick"], evidence.games.get(item["pick"]["game_id"], {})
        rows.append(p | {"home_score": game.get("home_score"), "away_score": game.get("away_score")})
    frame = pl.DataFrame(
        rows,
        schema={
            "version": pl.Int64,
            "market": pl.String,
            "pick": pl.String,
            "line": pl.Float64,
            "price": pl.Float64,
            "home_score": pl.Int64,
            "away_score": pl.Int64,
        },
    )
    result = grade(
        pl.col("market"), pl.col("line"), pl.col("home_score"), pl.col("away_score"), pl.col("pick")
    )
    return frame.with_columns(result.alias("result")).with_columns(
        profit(pl.col("result"), pl.col("price")).alias("profit")
    )


def _check_figures(graded: pl.DataFrame, figures: dict[int, dict[str, Any] | None]) -> None:
    for version, shown in sorted(figures.items()):
        mine = graded.filter(pl.col("version") == version)
        wins = mine.filter(pl.col("result") == "won").height
        count = mine.filter(pl.col("result").is_in(["won", "lost"])).height
        total = float(mine["profit"].fill_null(0.0).sum())
        shown = shown or {"graded": 0, "wins": 0, "profit": 0.0}
        for name, ours, theirs in (("graded", count, shown["graded"]), ("wins", wins, shown["wins"])):
            if ours != theirs:
                raise VerificationError(
                    f"figure {name} of version {version}: the API shows {theirs}, "
                    f"the re-graded record gives {ours}"
                )
        if abs(total - shown["profit"]) > PROFIT_TOLERANCE:
            raise VerificationError(
                f"figure profit of version {version}: the API shows {shown['profit']:.6f}, "
                f"the re-graded record gives {total:.6f}"
            )


def check(evidence: Evidence) -> Report:
    """Verify ``evidence``; raises :class:`VerificationError` naming the first thing that fails."""
    proofs, model_id = evidence.proofs, evidence.proofs["model_id"]
    stored = _check_days(evidence)
    _check_batches(model_id, proofs["batches"], stored)
    _check_chain(model_id, proofs["chain"], proofs["batches"])
    _check_picks(evidence, {b["batch_id"]: b for b in proofs["batches"]})
    graded = regrade(evidence)
    _check_figures(graded, evidence.figures)
    return Report(
        model_id,
        proofs["first"],
        proofs["last"],
        ok=True,
        picks=len(proofs["picks"]),
        batches=len(proofs["batches"]),
        days=len(evidence.days),
        chain_links=len(proofs["chain"]),
        graded=graded.filter(pl.col("result").is_in(["won", "lost"])).height,
        wins=graded.filter(pl.col("result") == "won").height,
        pushes=graded.filter(pl.col("result") == "push").height,
        profit=round(float(graded["profit"].fill_null(0.0).sum()), 4),
        versions=sorted(evidence.figures),
    )


def verify(fetch: Callable[[], Evidence], model_id: str) -> Report:
    """Fetch, then check; a failure (or an API refusal) is a report with ``ok`` false."""
    started = time.perf_counter()
    try:
        report = check(fetch())
    except VerificationError as exc:
        report = Report(model_id, "", "", ok=False, failure=str(exc))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def summary(report: Report) -> str:
    if not report.ok:
        return f"verify {report.model_id}: FAILED\n  {report.failure}"
    record = report.graded + report.pushes
    return (
        f"verify {report.model_id}: OK ({report.first} .. {report.last}, {report.seconds:.2f} s)\n"
        f"  {report.picks} picks in {report.batches} batches over {report.days} days, "
        f"{report.chain_links} chain links: every leaf, path, root, day root and link recomputed\n"
        f"  every batch written before its picks' cut-offs; {record} picks re-graded from final scores: "
        f"{report.wins} won, {report.graded - report.wins} lost, {report.pushes} pushes, "
        f"profit {report.profit:+.2f} units, as the model page shows"
    )
