"""The audit log: one record per action however often it is retried, never changed, read back in
time order, merged into the table once, printed by ``oddsforge audit``; review decisions leave their
records (SPEC 9)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from cli.main import main
from domain.compliance.audit import (
    AUDIT,
    AuditRecord,
    change_summary,
    id_problems,
    merge_records,
    record_id_of,
)
from domain.models.registry import build_version, new_model_id
from stores.audit import append, read_audit
from stores.lake import Lake
from stores.layout import review_key
from stores.registry import RegistryStore
from stores.reviews import ReviewStore, decide

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _record(key: str, at: dt.datetime = T0, after: dict[str, object] | None = None) -> AuditRecord:
    before = {"status": "pending"}
    return AuditRecord(key, at, "operator:ops", "review.approved", "model", "m1", before, after)


def test_a_retried_action_appends_one_record_and_the_first_stays(tmp_path) -> None:
    lake = Lake(root=str(tmp_path))
    assert append(lake, _record("review:m1:1", after={"status": "listed"}))
    assert not append(lake, _record("review:m1:1", T0 + dt.timedelta(hours=1), {"status": "rejected"}))
    table = read_audit(lake)
    assert table.height == 1
    assert table.row(0, named=True)["after"] == '{"status":"listed"}'
    assert table["before"].to_list() == ['{"status":"pending"}']


def test_records_come_back_oldest_first_and_since_filters(tmp_path) -> None:
    lake = Lake(root=str(tmp_path))
    for n in (3, 1, 2):
        append(lake, _record(f"k{n}", T0 + dt.timedelta(days=n)))
    assert read_audit(lake)["business_key"].to_list() == ["k1", "k2", "k3"]
    assert read_audit(lake, since=T0 + dt.timedelta(days=2))["business_key"].to_list() == ["k2", "k3"]
    assert read_audit(Lake(root=str(tmp_path / "empty"))).height == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"business_key": ""}, "business key"),
        ({"action": "approved"}, "object.verb"),
        ({"actor": ""}, "actor"),
        ({"acted_at": dt.datetime(2026, 12, 1)}, "timezone"),
    ],
)
def test_an_incomplete_record_is_refused_names_the_gap(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "business_key": "k",
        "acted_at": T0,
        "actor": "pipeline",
        "action": "model.suspended",
        "object_type": "model",
        "object_id": "m1",
    } | change
    with pytest.raises(ValueError, match=message):
        AuditRecord(**fields)  # type: ignore[arg-type]


# ---- the table's rules ----------------------------------------------------------------------------


def test_merging_keeps_each_record_once_as_first_stored_oldest_first() -> None:
    first = pl.DataFrame(
        [_record("k2", T0 + dt.timedelta(hours=2), {"status": "listed"}).row()], schema=AUDIT
    )
    again = _record("k2", T0 + dt.timedelta(hours=5), {"status": "rejected"}).row()  # same key, later
    new = pl.DataFrame([again, _record("k1", T0).row()], schema=AUDIT)
    merged = merge_records(first, new)
    assert merged["business_key"].to_list() == ["k1", "k2"]
    assert merged.row(1, named=True)["after"] == '{"status":"listed"}'
    assert merge_records(merged, merged).equals(merged)


def test_id_problems_name_a_repeated_id_and_one_that_is_not_its_keys_digest() -> None:
    table = pl.DataFrame([_record("k1").row(), _record("k2").row()], schema=AUDIT)
    assert id_problems(table) == []
    assert record_id_of("k1") == _record("k1").record_id
    forged = table.with_columns(business_key=pl.Series(["k1", "k3"]))
    assert id_problems(forged) == [
        f"1 record ids are not their business key's digest, e.g. {_record('k2').record_id}"
    ]
    assert id_problems(pl.concat([table, table.head(1)])) == ["1 record ids occur more than once"]


@pytest.mark.parametrize(
    ("before", "after", "summary"),
    [
        ('{"status":"pending_review"}', '{"status":"listed"}', "status: pending_review→listed"),
        (None, '{"decision":"approve","reason":"","version":2}', '→ decision=approve, reason="", version=2'),
        ('{"amount_cents":500,"status":"x"}', None, "amount_cents=500, status=x →"),
        ('{"a":1,"b":2}', '{"a":1,"c":null}', "b: 2→-"),
        ('{"a":1}', '{"a":1}', "unchanged"),
        (None, None, ""),
    ],
)
def test_a_change_reads_as_the_keys_that_differ(before: str | None, after: str | None, summary: str) -> None:
    assert change_summary(before, after) == summary


def test_a_long_change_is_cut_to_the_width() -> None:
    text = change_summary(None, '{"reason":"' + "x" * 200 + '"}', width=40)
    assert len(text) == 40 and text.endswith("…")


# ---- oddsforge audit ------------------------------------------------------------------------------


@pytest.fixture
def lake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    monkeypatch.setenv("ODDSFORGE_LAKE", str(tmp_path / "lake"))
    return Lake.from_env()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_the_audit_command_prints_a_table_or_json_lines_since_a_date_or_time(
    lake_env: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "audit") == (0, ["No audit records."], "")
    append(lake_env, _record("k1", T0, {"status": "listed"}))
    append(lake_env, _record("k2", T0 + dt.timedelta(days=2), {"status": "rejected"}))

    code, lines, _ = cli(capsys, "audit")
    assert code == 0 and len(lines) == 3
    assert lines[0].split() == ["time", "(UTC)", "actor", "action", "object", "before", "→", "after"]
    assert lines[1].split() == [
        "2026-12-01",
        "09:00:00",
        "operator:ops",
        "review.approved",
        "model",
        "m1",
        "status:",
        "pending→listed",
    ]

    code, lines, _ = cli(capsys, "audit", "--since", "2026-12-02", "--json")
    assert code == 0 and [json.loads(line)["business_key"] for line in lines] == ["k2"]
    record = json.loads(lines[0])
    assert record["acted_at"] == "2026-12-03T09:00:00Z"
    assert (record["before"], record["after"]) == ({"status": "pending"}, {"status": "rejected"})
    assert record["actor"] == "operator:ops" and record["record_id"] == _record("k2").record_id

    code, lines, _ = cli(capsys, "audit", "--since", "2026-12-01T09:00:01Z", "--json")
    assert [json.loads(line)["business_key"] for line in lines] == ["k2"]
    code, lines, _ = cli(capsys, "audit", "--since", "2026-12-01T04:00-05:00", "--json")  # 09:00 UTC
    assert [json.loads(line)["business_key"] for line in lines] == ["k1", "k2"]
    assert cli(capsys, "audit", "--since", "2027-01-01") == (
        0,
        ["No audit records since 2027-01-01T00:00:00+00:00."],
        "",
    )


def test_a_bad_since_is_one_line_and_exit_2(lake_env: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = cli(capsys, "audit", "--since", "last week")
    assert (code, lines) == (2, [])
    assert err.splitlines() == [
        "oddsforge audit: error: --since 'last week' is neither a date (YYYY-MM-DD) nor a time "
        "(YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])"
    ]


# ---- review decisions -----------------------------------------------------------------------------


def paid_model(lake: Lake, owner: str = "bob") -> str:
    """A paid public model, stored as published (the publishing rules are the models API's)."""
    model_id = new_model_id(owner, "Premium", b"\x00\x00\x07")
    body = {
        "name": "Premium",
        "sport": "basketball_nba",
        "market": "h2h",
        "data_sources": {"team_stats": {"weight": 1.0, "fields": ["net_rating"]}},
        "sharing": {"public": True, "price_per_month": 9.99, "trial_days": 7},
    }
    config = build_version(
        body, model_id=model_id, owner_user_id=owner, version=1, created_at=T0, updated_at=T0
    )
    assert RegistryStore(lake).create_version(config)
    return model_id


def test_each_review_decision_leaves_one_audit_record_with_before_and_after(
    lake_env: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    model_id = paid_model(lake_env)
    assert cli(capsys, "review", "approve", model_id, "--reviewer", "ops")[0] == 0
    (approved,) = read_audit(lake_env).iter_rows(named=True)
    assert (approved["actor"], approved["action"]) == ("operator:ops", "review.approved")
    assert (approved["object_type"], approved["object_id"]) == ("model", model_id)
    assert approved["before"] is None
    assert json.loads(approved["after"]) == {
        "decision": "approve",
        "version": 1,
        "price_cents": 999,
        "reason": "",
    }

    assert (
        cli(capsys, "review", "reject", model_id, "--reviewer", "ana", "--reason", "misleading name")[0] == 0
    )
    first, rejected = read_audit(lake_env).iter_rows(named=True)
    assert first == approved
    assert (rejected["actor"], rejected["action"]) == ("operator:ana", "review.rejected")
    assert json.loads(rejected["before"]) == json.loads(approved["after"])
    assert json.loads(rejected["after"])["reason"] == "misleading name"
    assert change_summary(rejected["before"], rejected["after"]) == (
        'decision: approve→reject, reason: ""→misleading name'
    )


def test_a_decision_retried_after_a_crash_leaves_one_record(
    lake_env: Lake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model_id = paid_model(lake_env)
    put_bytes = Lake.put_bytes

    def crash_on_the_decision(self: Lake, key: str, data: bytes) -> None:
        if key == review_key(model_id, 1):
            raise OSError("disk gone")
        put_bytes(self, key, data)

    monkeypatch.setattr(Lake, "put_bytes", crash_on_the_decision)
    with pytest.raises(OSError):
        decide(lake_env, model_id, "approve", "", "ops", T0)
    assert read_audit(lake_env).height == 1  # the record is written first
    monkeypatch.setattr(Lake, "put_bytes", put_bytes)
    decide(lake_env, model_id, "approve", "", "ops", T0 + dt.timedelta(minutes=1))
    (record,) = read_audit(lake_env).iter_rows(named=True)
    assert record["acted_at"] == T0 and record["before"] is None
    assert ReviewStore(lake_env).latest(model_id)["decision"] == "approve"
