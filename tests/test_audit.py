"""The audit log: one record per action however often it is retried, never changed, read back in
time order (SPEC 9)."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.compliance.audit import AuditRecord
from stores.audit import append, read_audit
from stores.lake import Lake

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
        ({"at": dt.datetime(2026, 12, 1)}, "timezone"),
    ],
)
def test_an_incomplete_record_is_refused_names_the_gap(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "business_key": "k",
        "at": T0,
        "actor": "pipeline",
        "action": "model.suspended",
        "object_type": "model",
        "object_id": "m1",
    } | change
    with pytest.raises(ValueError, match=message):
        AuditRecord(**fields)  # type: ignore[arg-type]
