"""Committed picks verified over real HTTP (SPEC 9): the demo's models over six weeks of the sample
league, committed as the demo commits them, served by uvicorn; ``oddsforge verify`` reads only the API.

An untouched record verifies; editing a stored pick's price, deleting a pick, inserting a backdated
pick or rewriting a batch object each fails and is named; re-running a committed day with other odds
changes no commitment, keeps the record and raises an alert; a paid model's proofs are 404 to
non-subscribers while the day's commitments are open to anyone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import dagster as dg
import httpx
import polars as pl
import pytest

from api.app import create_app
from api.auth import mint_token
from assets.analyses import due_versions, read_model_versions
from cli.demo import demo_model_id, publish_demo_models, register_demo_models, subscribe_demo_users
from cli.main import main
from cli.verify import ApiSource, verify
from domain.formats.sample_league import SEASON_START
from pipelines.jobs import range_tags
from services.commitments import public_models, replay_commitments
from stores.alerts import read_alerts
from stores.commitments import day_batches
from stores.lake import Lake
from stores.layout import COMMITMENTS, commitment_batch_key, commitment_leaves_key, table_key
from tests.market_pipeline import INGEST_OPS, market_definitions
from tests.test_api import SECRET, serve, settings_for

NBA = "basketball_nba"
FIRST, LAST = SEASON_START, SEASON_START + dt.timedelta(days=41)
ONLY_NBA = {"config": {"sports": [NBA]}}
FREE = demo_model_id("alice", "Form and steam")
PAID = demo_model_id("bob", "Rotation strength")


@dataclass
class Served:
    lake: Lake
    url: str
    defs: dg.Definitions
    instance: dg.DagsterInstance

    def source(self, user: str = "dave") -> ApiSource:
        return ApiSource(self.url, mint_token(user, SECRET))

    def verify(self, model_id: str = FREE):
        source = self.source()
        return verify(lambda: source.evidence(model_id, FIRST, LAST), model_id)

    def run(self, job: str, ops: list[str], first: dt.date = FIRST, last: dt.date = LAST) -> None:
        result = self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance,
            tags=range_tags(first, last) if job != "publish" else {},
            run_config={"ops": dict.fromkeys(ops, ONLY_NBA)},
        )
        assert result.success


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("verify")
    lake = Lake(root=str(root / "lake"))
    defs = market_definitions(
        lake,
        root,
        {"models": ["model_versions"], "publish": ["subscriptions", "model_status", "serving_snapshot"]},
    )
    served = Served(lake, "", defs, dg.DagsterInstance.ephemeral())
    served.run("ingest", INGEST_OPS)
    register_demo_models(lake)
    publish_demo_models(lake, FIRST)
    subscribe_demo_users(lake)
    served.run("models", [])
    served.run("score", ["analyses", "settled_picks", "model_performance"])
    assert not any(True for _ in lake.list_keys(COMMITMENTS)), "a backfill's late picks were committed"
    versions = due_versions(read_model_versions(lake), [])
    assert replay_commitments(lake, NBA, FIRST, LAST, versions) > 0
    assert replay_commitments(lake, NBA, FIRST, LAST, versions) == 0
    served.run("publish", [])
    app = create_app(replace(settings_for(root / "warehouse"), read_limit=0), lake=lake)
    with serve(app) as url:
        served.url = url
        yield served


def commitment_files(lake: Lake) -> dict[str, str]:
    return {k: hashlib.sha256(lake.get_bytes(k)).hexdigest() for k in lake.list_keys(COMMITMENTS)}


@contextmanager
def edited(lake: Lake, key: str, edit: Callable[[bytes], bytes]) -> Iterator[None]:
    """``key`` rewritten by ``edit`` for the block, then restored byte for byte."""
    before = lake.get_bytes(key)
    lake.put_bytes(key, edit(before))
    try:
        yield
    finally:
        lake.put_bytes(key, before)


def busiest_day(lake: Lake) -> dt.date:
    days = [b.day for d in range(42) for b in day_batches(lake, FIRST + dt.timedelta(days=d))]
    return max(set(days), key=lambda d: (days.count(d), d))


def edit_analyses(change: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        out = io.BytesIO()
        change(pl.read_parquet(io.BytesIO(data))).write_parquet(out)
        return out.getvalue()

    return edit


def first_pick(frame: pl.DataFrame) -> pl.Expr:
    """The first qualifying analysis of the free model in a day's rows."""
    index = frame.with_row_index().filter((pl.col("model_id") == FREE) & pl.col("qualifies"))["index"][0]
    return pl.int_range(pl.len()) == index


def test_an_untouched_record_verifies_over_the_api(served: Served) -> None:
    report = served.verify()
    assert report.ok, report.failure
    assert report.picks > 50 and report.batches >= 30 and report.chain_links == report.batches
    assert report.graded > 0


def test_the_command_exits_0_on_the_record_and_prints_its_summary(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    token = mint_token("dave", SECRET)
    args = ["verify", FREE, "--from", FIRST.isoformat(), "--to", LAST.isoformat(), "--api", served.url]
    assert main([*args, "--token", token]) == 0
    assert f"verify {FREE}: OK" in capsys.readouterr().out


def test_an_edited_price_fails_and_names_the_pick(served: Served) -> None:
    day = busiest_day(served.lake)
    key = table_key("analyses", NBA, day)
    frame = pl.read_parquet(io.BytesIO(served.lake.get_bytes(key)))
    game = frame.filter(first_pick(frame))["game_id"][0]
    bump = edit_analyses(
        lambda f: f.with_columns(
            pl.when(first_pick(f))
            .then(pl.col("pick_price") + 0.05)
            .otherwise(pl.col("pick_price"))
            .alias("pick_price")
        )
    )
    with edited(served.lake, key, bump):
        report = served.verify()
    assert not report.ok
    assert game in report.failure and "not committed" in report.failure


def test_a_deleted_pick_fails_and_names_its_leaf(served: Served) -> None:
    day = busiest_day(served.lake)
    with edited(
        served.lake, table_key("analyses", NBA, day), edit_analyses(lambda f: f.filter(~first_pick(f)))
    ):
        report = served.verify()
    assert not report.ok
    assert "has no pick in the record" in report.failure


def test_a_backdated_pick_fails_and_is_named(served: Served) -> None:
    day = busiest_day(served.lake)
    key = table_key("analyses", NBA, day)
    frame = pl.read_parquet(io.BytesIO(served.lake.get_bytes(key)))
    hidden = frame.filter((pl.col("model_id") == FREE) & ~pl.col("qualifies")).head(1)
    assert hidden.height, "no analysis below the threshold to promote"

    def insert(f: pl.DataFrame) -> pl.DataFrame:
        return pl.concat([f, hidden.with_columns(pl.lit(True).alias("qualifies"))])

    with edited(served.lake, key, edit_analyses(insert)):
        report = served.verify()
    assert not report.ok
    assert hidden["game_id"][0] in report.failure and "not committed" in report.failure


def test_a_rewritten_batch_object_fails_and_is_named(served: Served) -> None:
    day = busiest_day(served.lake)
    batch = day_batches(served.lake, day)[0]
    key = commitment_batch_key(day, batch.batch_id)
    earlier = batch.raw.replace(batch.obj["written_at"][:4].encode(), b"2000", 1)
    with edited(served.lake, key, lambda _: earlier):
        report = served.verify()
    assert not report.ok
    assert batch.batch_id in report.failure


def test_a_deleted_batch_fails_and_is_named(served: Served) -> None:
    day = busiest_day(served.lake)
    batch = day_batches(served.lake, day)[0]
    keys = [commitment_batch_key(day, batch.batch_id), commitment_leaves_key(day, batch.batch_id)]
    stored = {k: served.lake.get_bytes(k) for k in keys}
    for key in keys:
        served.lake.delete(key)
    try:
        report = served.verify()
    finally:
        for key, data in stored.items():
            served.lake.put_bytes(key, data)
    assert not report.ok
    assert batch.batch_id in report.failure


def test_a_paid_models_proofs_are_404_to_non_subscribers_and_commitments_open_to_anyone(
    served: Served,
) -> None:
    day = busiest_day(served.lake)
    outsider = served.source("mallory")
    response = outsider.client.get(
        f"/models/{PAID}/proofs", params={"from": FIRST.isoformat(), "to": LAST.isoformat()}
    )
    assert response.status_code == 404, response.text
    anyone = httpx.get(f"{served.url}/commitments/{day.isoformat()}")
    assert anyone.status_code == 200
    body = anyone.json()
    assert body["day_root"] is not None and body["batches"]
    assert any(PAID in b["object"]["roots"] for b in body["batches"]) or any(
        FREE in b["object"]["roots"] for b in body["batches"]
    )
    owner = served.source("bob").client.get(
        f"/models/{PAID}/proofs", params={"from": FIRST.isoformat(), "to": LAST.isoformat()}
    )
    assert owner.status_code == 200 and owner.json()["picks"]


def test_a_rerun_of_a_committed_day_changes_no_commitment_and_raises_an_alert(served: Served) -> None:
    lake = served.lake
    day = busiest_day(lake)
    before = commitment_files(lake)
    analyses_before = lake.get_bytes(table_key("analyses", NBA, day))
    odds = table_key("odds_snapshots", NBA, day)
    dearer = edit_analyses(
        lambda f: f.with_columns(pl.col("price_first") * 1.05, pl.col("price_second") * 1.05)
    )
    with edited(lake, odds, dearer):
        served.run("analyses_only", ["analyses"], day, day)
    try:
        assert commitment_files(lake) == before
        alerts = [a for a in read_alerts(lake) if a["kind"] == "commitment_conflict"]
        assert alerts and alerts[0]["details"]["day"] == day.isoformat()
        kept = pl.read_parquet(io.BytesIO(lake.get_bytes(table_key("analyses", NBA, day))))
        shared = public_models(due_versions(read_model_versions(lake), []))
        committed = pl.read_parquet(io.BytesIO(analyses_before)).filter(
            pl.col("qualifies") & pl.col("model_id").is_in(list(shared))
        )
        assert committed.height
        assert committed.join(kept, on=list(committed.columns), how="anti", nulls_equal=True).is_empty()
        assert served.verify().ok
    finally:
        lake.put_bytes(table_key("analyses", NBA, day), analyses_before)
