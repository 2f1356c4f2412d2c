"""Pick commitments (SPEC 9): the worked example's every digest, and Merkle paths on hand-made trees."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

from domain.compliance.commitments import (
    ZERO_CHAIN,
    Pick,
    batch_digest,
    day_root,
    inclusion_path,
    merkle_root,
    next_chain,
    root_from_path,
    sha256_hex,
)
from domain.models.engine import ANALYSES
from domain.tables.schemas import GAMES, conform
from services.commitments import commit_picks, publish_day_root
from stores.alerts import read_alerts
from stores.commitments import claim_link, day_batches, read_chain
from stores.lake import Lake
from stores.layout import COMMITMENTS, table_key

NBA = "basketball_nba"

EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "commitments" / "worked_example.json"


@pytest.fixture(scope="module")
def example() -> dict:
    if not EXAMPLE.exists():
        pytest.skip(f"the worked example is not beside the clone ({EXAMPLE} is absent)")
    return json.loads(EXAMPLE.read_text())


def check_model(model: dict) -> None:
    leaves = []
    for entry in model["picks"]:
        pick = Pick.from_fields(entry["pick"])
        assert pick.canonical() == entry["canonical"]
        assert pick.leaf() == entry["leaf"]
        leaves.append(pick.leaf())
    assert merkle_root(leaves) == model["root"]
    assert next_chain(model["previous_chain"], model["root"]) == model["chain"]
    for leaf in leaves:
        assert root_from_path(leaf, inclusion_path(leaves, leaf)) == model["root"]


def test_the_worked_example_reproduces_every_digest(example: dict) -> None:
    batch = example["batch"]
    for model in batch["models"].values():
        assert model["previous_chain"] == ZERO_CHAIN
        check_model(model)
    assert batch_digest(batch["object"]) == batch["digest"]
    second = example["second_batch"]
    check_model({**second, "picks": [{k: second[k] for k in ("pick", "canonical", "leaf")}]})
    assert second["previous_chain"] == batch["models"]["bob--rotation-strength-8aa5b6"]["chain"]
    assert batch_digest(second["object"]) == second["digest"]
    day = example["day"]
    assert [batch["digest"], second["digest"]] == day["batch_digests"]
    assert day_root(day["batch_digests"]) == day["root"]


def digest(n: int) -> str:
    return sha256_hex(str(n).encode())


def pair(left: str, right: str) -> str:
    return sha256_hex(bytes.fromhex(left) + bytes.fromhex(right))


def test_an_odd_node_is_promoted_unchanged_and_leaves_are_sorted_first() -> None:
    a, b, c = sorted(digest(n) for n in range(3))
    assert merkle_root([c, a, b]) == pair(pair(a, b), c)
    assert merkle_root([a]) == a
    assert inclusion_path([a, b, c], c)[0].sibling == pair(a, b)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_every_leaf_has_a_path_to_the_root_and_a_changed_leaf_has_none(n: int) -> None:
    leaves = [digest(i) for i in range(n)]
    root = merkle_root(leaves)
    for leaf in leaves:
        path = inclusion_path(leaves, leaf)
        assert root_from_path(leaf, path) == root
        assert root_from_path(digest(99), path) != root


def test_a_pick_commits_exactly_its_fields_with_line_null_for_h2h() -> None:
    pick = Pick("m", 1, "g", "b", "h2h", "home", 1.5, 1.35, 0.7, dt.datetime(2025, 1, 1, 1, tzinfo=dt.UTC))
    assert pick.fields()["line"] is None
    assert pick.fields()["cut_off"] == "2025-01-01T01:00:00Z"
    with pytest.raises(ValueError, match="exactly the fields"):
        Pick.from_fields(pick.fields() | {"extra": 1})


# ---- committing runs (services/commitments.py) over a local lake ------------------------------------

DAY = dt.date(2025, 10, 21)
TIP = dt.datetime(2025, 10, 21, 23, 30, tzinfo=dt.UTC)
MODEL = "alice--form-and-steam-1a2b3c"


def slate(lake: Lake, price: float = 1.909) -> pl.DataFrame:
    """One game of ``DAY`` in the lake and the model's qualifying analysis of it at ``price``."""
    games = pl.DataFrame([{"game_id": "g1", "sport": NBA, "game_date": DAY, "commence_time": TIP}])
    lake.write_parquet(table_key("games", NBA, DAY), conform(games, GAMES))
    row = {
        "model_id": MODEL,
        "version": 2,
        "sport": NBA,
        "market": "spreads",
        "game_id": "g1",
        "game_date": DAY,
        "bookmaker": "draftkings",
        "line": -6.5,
        "pick": "home",
        "confidence": 0.61,
        "qualifies": True,
        "pick_price": price,
    }
    return conform(pl.DataFrame([row]), ANALYSES)


def at(moment: dt.datetime) -> Callable[[], dt.datetime]:
    return lambda: moment


def test_picks_are_committed_before_their_cut_off_and_late_ones_never(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    analyses = slate(lake)
    late = commit_picks(lake, NBA, DAY, analyses, {MODEL}, at(TIP))
    assert late.batch_id is None and late.late == 1 and not list(lake.list_keys(COMMITMENTS))
    done = commit_picks(lake, NBA, DAY, analyses, {MODEL}, at(TIP - dt.timedelta(hours=8)))
    assert done.committed == 1
    (batch,) = day_batches(lake, DAY)
    assert batch.obj["written_at"] == "2025-10-21T15:30:00Z"
    assert (
        batch.obj["roots"][MODEL]
        == Pick.from_fields(
            Pick(MODEL, 2, "g1", "draftkings", "spreads", "home", -6.5, 1.909, 0.61, TIP).fields()
        ).leaf()
    )
    assert not publish_day_root(lake, DAY, TIP)  # the day's last game has not started
    assert publish_day_root(lake, DAY, TIP + dt.timedelta(minutes=1))
    assert not publish_day_root(lake, DAY, TIP + dt.timedelta(hours=1))  # published once


def test_a_run_changing_a_committed_pick_alerts_and_keeps_it(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    committed = slate(lake)
    lake.write_parquet(table_key("analyses", NBA, DAY), committed)
    commit_picks(lake, NBA, DAY, committed, {MODEL}, at(TIP - dt.timedelta(hours=8)))
    before = {k: lake.get_bytes(k) for k in lake.list_keys(COMMITMENTS)}
    again = commit_picks(lake, NBA, DAY, slate(lake, 1.95), {MODEL}, at(TIP - dt.timedelta(hours=4)))
    assert again.conflicts and again.batch_id is None
    assert again.analyses["pick_price"].to_list() == [1.909]
    assert {k: lake.get_bytes(k) for k in lake.list_keys(COMMITMENTS)} == before
    assert [a["kind"] for a in read_alerts(lake)] == ["commitment_conflict"]


def test_two_runs_never_extend_a_chain_from_the_same_value(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    roots = [digest(n) for n in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda r: claim_link(lake, MODEL, DAY, "20251021T150000000000Z-00000000", r), roots))
    chain = read_chain(lake, MODEL)
    assert [link.position for link in chain] == list(range(1, 17))
    previous = ZERO_CHAIN
    for link in chain:
        assert link.previous == previous and link.chain == next_chain(previous, link.root)
        previous = link.chain
    assert sorted(link.root for link in chain) == sorted(roots)


def test_an_on_demand_run_commits_what_it_showed_once_and_never_alerts(tmp_path: Path) -> None:
    lake = Lake(root=str(tmp_path))
    morning = TIP - dt.timedelta(hours=8)
    shown = commit_picks(lake, NBA, DAY, slate(lake), {MODEL}, at(morning), run="on_demand")
    again = commit_picks(lake, NBA, DAY, slate(lake), {MODEL}, at(morning), run="on_demand")
    moved = commit_picks(lake, NBA, DAY, slate(lake, 1.95), {MODEL}, at(morning), run="on_demand")
    assert shown.committed == 1 and again.committed == 0 and moved.committed == 1
    assert not read_alerts(lake)
    record = commit_picks(lake, NBA, DAY, slate(lake), {MODEL}, at(morning), run="record")
    assert record.committed == 1 and not record.conflicts  # on-demand batches are not the record
