"""The lake's key layout, pinned: real lakes hold these keys, so a builder that changes a byte strands
every object written before. Each parser reads back what its builder wrote and refuses other kinds."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from stores import layout

MODEL = "alice--m-abcdef"
NTF = "ntf_" + "0a" * 16
DATASET = "alice--ds-3fa9c1"
DAY = dt.date(2025, 1, 15)
JOB = "job-0123456789abcdef"

OTHER_KINDS = [
    layout.raw_key("games", "basketball_nba", DAY, "odds_api"),
    layout.table_key("games"),
    layout.table_key("analyses", "basketball_nba", DAY),
    layout.ledger_key("2025-01"),
    layout.model_version_key(MODEL, 3),
    layout.model_archived_key(MODEL),
    layout.dataset_meta_key(DATASET, 2),
    layout.dataset_edit_key(DATASET, 1),
    layout.dataset_deleted_key(DATASET),
    layout.subscription_event_key("bob", MODEL, 4),
    layout.review_key(MODEL, 3),
    layout.rating_key(MODEL, "0123456789abcdef", "text", 2),
    layout.rating_key(MODEL, "0123456789abcdef", "report", user_id="zoe"),
    layout.backtest_key(MODEL, 3, DAY, DAY),
    layout.draft_backtest_key(MODEL, "0123456789abcdef", DAY, DAY),
    layout.tuning_key(MODEL, JOB, 1000),
    layout.job_key("bob", JOB, "request"),
    layout.stripe_event_key("evt_1"),
    layout.paid_attempt_key("bob", MODEL, 2),
    layout.payout_intent_key("2025-01", "alice"),
    layout.payout_transfer_key("2025-01", "alice"),
    layout.account_state_key("alice", 1_764_000_000, "evt_1"),
    layout.creator_terms_key("alice", "2026-12-01"),
    layout.analyses_cache_key(MODEL, 3, DAY),
    layout.analyze_run_key("bob", dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC), "0a1b2c3d"),
    layout.idempotency_claim_key("bob", "ab" * 32, 1),
    layout.self_exclusion_key("bob", DAY, "6m"),
    layout.audit_key("0f" * 16),
    layout.audit_table_key("2025-01"),
]


def others(*own: str) -> list[str]:
    return [key for key in OTHER_KINDS if key not in own]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            layout.raw_key("games", "basketball_nba", DAY, "odds_api"),
            "raw/games/basketball_nba/2025-01-15/odds_api.parquet",
        ),
        (layout.table_key("games"), "tables/games.parquet"),
        (
            layout.table_key("analyses", "basketball_nba", DAY),
            "tables/analyses/basketball_nba/2025-01-15.parquet",
        ),
        (layout.table_prefix("analyses", "basketball_nba"), "tables/analyses/basketball_nba/"),
        (layout.ledger_key("2025-01"), "tables/ledger/2025-01.parquet"),
        (layout.payouts_table_key("2025-01"), "tables/payouts/2025-01.parquet"),
        (layout.audit_table_key("2025-01"), "tables/audit/2025-01.parquet"),
        (layout.dataset_rows_key(DATASET, 2), "tables/dataset_rows/alice--ds-3fa9c1/v000002.parquet"),
        (layout.alert_key("quota-r1"), "tables/alerts/quota-r1.json"),
        (
            layout.dataset_report_key(DATASET, 2, "report.json"),
            "datasets/alice--ds-3fa9c1/v000002/report.json",
        ),
        (layout.model_version_key(MODEL, 12), "inbox/models/alice/alice--m-abcdef/v000012.json"),
        (layout.model_archived_key(MODEL), "inbox/models/alice/alice--m-abcdef/archived.json"),
        (layout.dataset_meta_key(DATASET, 2), "inbox/datasets/alice/alice--ds-3fa9c1/v000002/meta.json"),
        (
            layout.dataset_upload_key(DATASET, 2, "csv", "0123456789abcdef"),
            "inbox/datasets/alice/alice--ds-3fa9c1/v000002/upload-0123456789abcdef.csv",
        ),
        (layout.dataset_edit_key(DATASET, 1), "inbox/datasets/alice/alice--ds-3fa9c1/edits/000001.json"),
        (layout.dataset_deleted_key(DATASET), "inbox/datasets/alice/alice--ds-3fa9c1/deleted.json"),
        (
            layout.subscription_event_key("bob", MODEL, 4),
            "inbox/subscriptions/bob/alice--m-abcdef/000004.json",
        ),
        (layout.review_key(MODEL, 3), "inbox/reviews/alice--m-abcdef/v000003.json"),
        (
            layout.rating_key(MODEL, "0123456789abcdef", "text", 2),
            "inbox/ratings/alice--m-abcdef/0123456789abcdef/v000002.json",
        ),
        (
            layout.rating_key(MODEL, "0123456789abcdef", "reply"),
            "inbox/ratings/alice--m-abcdef/0123456789abcdef/reply.json",
        ),
        (
            layout.rating_key(MODEL, "0123456789abcdef", "helpful", user_id="zoe"),
            "inbox/ratings/alice--m-abcdef/0123456789abcdef/helpful/zoe.json",
        ),
        (
            layout.rating_key(MODEL, "0123456789abcdef", "report", user_id="zoe"),
            "inbox/ratings/alice--m-abcdef/0123456789abcdef/reports/zoe.json",
        ),
        (
            layout.rating_key(MODEL, "0123456789abcdef", "decision", 1),
            "inbox/ratings/alice--m-abcdef/0123456789abcdef/decisions/000001.json",
        ),
        (
            layout.backtest_key(MODEL, 3, DAY, dt.date(2025, 2, 1)),
            "inbox/backtests/alice--m-abcdef/v000003/2025-01-15_2025-02-01.json",
        ),
        (layout.stripe_event_key("evt_1Ab"), "inbox/stripe/events/evt_1Ab.json"),
        (layout.stripe_account_key("alice"), "inbox/stripe/accounts/alice.json"),
        (
            layout.account_state_key("alice", 1_764_000_000, "evt_1Ab"),
            "inbox/stripe/account_states/alice/1764000000-evt_1Ab.json",
        ),
        (layout.creator_terms_key("alice", "2026-12-01"), "inbox/creator_terms/alice/2026-12-01.json"),
        (layout.stripe_price_key(MODEL, 999), "inbox/stripe/prices/alice--m-abcdef/999.json"),
        (layout.stripe_customer_key("bob"), "inbox/stripe/customers/bob.json"),
        (
            layout.paid_attempt_key("bob", MODEL, 2),
            "inbox/stripe/subscriptions/bob/alice--m-abcdef/000002.json",
        ),
        (
            layout.paid_attempt_key("bob", MODEL, 2, "session"),
            "inbox/stripe/subscriptions/bob/alice--m-abcdef/000002.session.json",
        ),
        (
            layout.paid_attempt_key("bob", MODEL, 2, "cancel"),
            "inbox/stripe/subscriptions/bob/alice--m-abcdef/000002.cancel.json",
        ),
        (layout.payout_intent_key("2025-01", "alice"), "inbox/payouts/2025-01/alice.json"),
        (layout.payout_attempt_key("2025-01", "alice"), "inbox/payouts/2025-01/attempts/alice.json"),
        (layout.payout_transfer_key("2025-01", "alice"), "inbox/payouts/2025-01/transfers/alice.json"),
        (layout.cancellation_key("sub_1", "cancel"), "inbox/cancellations/sub_1/cancel.json"),
        (layout.refund_key("sub_1", "in_2", "refunded"), "inbox/cancellations/sub_1/refunded/in_2.json"),
        (layout.audit_key("0f" * 16), "inbox/audit/0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f.json"),
        (
            layout.analyses_cache_key(MODEL, 3, DAY),
            "cache/analyses/alice--m-abcdef/v000003/2025-01-15.parquet",
        ),
        (
            layout.analyze_run_key(
                "bob", dt.datetime(2025, 1, 15, 12, 0, 0, 250_000, tzinfo=dt.UTC), "0a1b2c3d"
            ),
            "cache/ratelimits/analyze/bob/1736942400250-0a1b2c3d",
        ),
        (layout.dataset_warehouse_location(DATASET, 2), "datasets/alice--ds-3fa9c1/v000002.duckdb"),
        (layout.self_exclusion_key("bob", DAY, "30d"), "inbox/self_exclusions/bob/2025-01-15-30d.json"),
        (
            layout.self_exclusion_key("bob", DAY, "permanent"),
            "inbox/self_exclusions/bob/2025-01-15-permanent.json",
        ),
        (layout.user_paid_attempts_prefix("bob"), "inbox/stripe/subscriptions/bob/"),
        (layout.follow_event_key("bob", "alice", 3), "inbox/follows/bob/alice/000003.json"),
        (layout.webhook_key("bob", "wh_0123456789abcdef"), "inbox/webhooks/bob/wh_0123456789abcdef.json"),
        (
            layout.webhook_key("bob", "wh_0123456789abcdef", deleted=True),
            "inbox/webhooks/bob/wh_0123456789abcdef.deleted.json",
        ),
        (layout.preferences_key("bob", 2), "inbox/notification_preferences/bob/000002.json"),
        (
            layout.delivery_record_key("bob", "webhook-wh_0123456789abcdef", NTF, "attempt", 2),
            f"inbox/deliveries/bob/webhook-wh_0123456789abcdef/{NTF}/attempt-002.json",
        ),
        (
            layout.delivery_record_key("bob", "email", NTF, "result", 1),
            f"inbox/deliveries/bob/email/{NTF}/result-001.json",
        ),
        (
            layout.delivery_record_key("bob", "email", NTF, "dead"),
            f"inbox/deliveries/bob/email/{NTF}/dead.json",
        ),
        (layout.pick_digests_key(DAY), "tables/pick_digests/2025-01-15.parquet"),
        (
            layout.serving_snapshot_name(dt.datetime(2025, 1, 15, 6, 30, 5), "0a1b2c3d"),
            "serving-20250115T063005-0a1b2c3d.duckdb",
        ),
    ],
)
def test_every_builder_writes_the_key_existing_lakes_hold(key: str, expected: str) -> None:
    assert key == expected


def test_commitment_keys_read_back_and_batches_sort_by_their_write_time() -> None:
    written = dt.datetime(2025, 10, 21, 15, 0, 0, 250, tzinfo=dt.UTC)
    batch = layout.batch_id(written, "0a1b2c3d")
    assert batch == "20251021T150000000250Z-0a1b2c3d"
    key = layout.commitment_batch_key(DAY, batch)
    assert key == f"commitments/batches/2025-01-15/{batch}.json"
    assert layout.parse_commitment_batch_key(key) == layout.BatchKey(DAY, batch)
    assert layout.commitment_leaves_key(DAY, batch) == f"commitments/leaves/2025-01-15/{batch}.json"
    later = layout.batch_id(written + dt.timedelta(microseconds=1), "00000000")
    assert layout.commitment_batch_key(DAY, batch) < layout.commitment_batch_key(DAY, later)
    chain = layout.commitment_chain_key("alice--m-abcdef", 3)
    assert chain == "commitments/chains/alice--m-abcdef/00000003.json"
    assert layout.parse_commitment_chain_key(chain) == ("alice--m-abcdef", 3)
    assert layout.parse_commitment_day_key(layout.commitment_day_key(DAY)) == DAY
    with pytest.raises(ValueError):
        layout.commitment_batch_key(DAY, "../../x")


def test_a_daily_key_and_its_shards_read_back_as_table_sport_and_day() -> None:
    for key in [
        layout.table_key("analyses", "basketball_nba", DAY),
        "tables/analyses/basketball_nba/2025-01-15/shard-0.parquet",
        layout.month_table_key("analyses", "basketball_nba", "2025-01"),
    ]:
        period = layout.parse_period_key(key)
        assert period is not None and (period.table, period.sport) == ("analyses", "basketball_nba"), key
        assert period.day in {DAY, None} and period.span[0] <= DAY < period.span[1], key
    assert layout.parse_period_key(layout.raw_key("games", "basketball_nba", DAY, "odds_api")).day == DAY
    for key in [*others(layout.table_key("analyses", "basketball_nba", DAY)), "tables/x/y/not-a-day.parquet"]:
        period = layout.parse_period_key(key)
        assert period is None or period.family.startswith("raw/"), key


def test_a_daily_key_needs_its_day() -> None:
    with pytest.raises(ValueError, match="needs its day"):
        layout.table_key("analyses", "basketball_nba")


def test_model_keys_read_back_and_a_folder_must_match_the_owner() -> None:
    assert layout.parse_model_key(layout.model_version_key(MODEL, 12)) == layout.ModelKey(MODEL, 12)
    assert layout.parse_model_key(layout.model_archived_key(MODEL)) == layout.ModelKey(MODEL, None)
    assert layout.parse_model_key("inbox/models/bob/alice--m-abcdef/v000001.json") is None
    assert layout.parse_model_key("inbox/models/alice/alice--m-abcdef/v1.json") is None
    for key in others(layout.model_version_key(MODEL, 3), layout.model_archived_key(MODEL)):
        assert layout.parse_model_key(key) is None, key


def test_dataset_inbox_keys_read_back_with_their_kind_and_number() -> None:
    upload = layout.dataset_upload_key(DATASET, 2, "csv", "0123456789abcdef")
    assert layout.parse_dataset_key(layout.dataset_meta_key(DATASET, 2)) == layout.DatasetKey(
        DATASET, "meta", 2
    )
    assert layout.parse_dataset_key(upload) == layout.DatasetKey(DATASET, "upload", 2)
    assert layout.parse_dataset_key(layout.dataset_edit_key(DATASET, 1)) == layout.DatasetKey(
        DATASET, "edit", 1
    )
    assert layout.parse_dataset_key(layout.dataset_deleted_key(DATASET)) == layout.DatasetKey(
        DATASET, "deleted", None
    )
    assert layout.parse_dataset_key("inbox/datasets/bob/alice--ds-3fa9c1/deleted.json") is None
    own = (
        layout.dataset_meta_key(DATASET, 2),
        layout.dataset_edit_key(DATASET, 1),
        layout.dataset_deleted_key(DATASET),
    )
    for key in [
        *others(*own),
        layout.dataset_rows_key(DATASET, 2),
        layout.dataset_report_key(DATASET, 2, "report.json"),
    ]:
        assert layout.parse_dataset_key(key) is None, key


def test_subscription_and_review_keys_read_back() -> None:
    event = layout.subscription_event_key("bob", MODEL, 4)
    assert layout.parse_subscription_key(event) == layout.SubscriptionKey("bob", MODEL, 4)
    assert layout.parse_subscription_key("inbox/subscriptions/bob/not-a-model/000004.json") is None
    for key in others(event):
        assert layout.parse_subscription_key(key) is None, key
    review = layout.review_key(MODEL, 3)
    assert layout.parse_review_key(review) == layout.ReviewKey(MODEL, 3)
    for key in others(review):
        assert layout.parse_review_key(key) is None, key


def test_a_user_review_key_reads_back_as_its_review_and_record_and_others_do_not() -> None:
    rid = "0123456789abcdef"
    text, report = (
        layout.rating_key(MODEL, rid, "text", 2),
        layout.rating_key(MODEL, rid, "report", user_id="zoe"),
    )
    assert layout.parse_rating_key(text) == layout.RatingKey(MODEL, rid, "text", 2, None)
    assert layout.parse_rating_key(report) == layout.RatingKey(MODEL, rid, "report", None, "zoe")
    assert layout.parse_rating_key(layout.rating_key(MODEL, rid, "decision", 3)) == layout.RatingKey(
        MODEL, rid, "decision", 3, None
    )
    assert layout.parse_rating_key(f"inbox/ratings/not-a-model/{rid}/v000001.json") is None
    for key in others(text, report):
        assert layout.parse_rating_key(key) is None, key


def test_a_backtest_key_reads_back_as_its_model_version_and_span() -> None:
    report = layout.backtest_key(MODEL, 3, DAY, DAY)
    assert layout.parse_backtest_key(report) == layout.BacktestKey(MODEL, 3, DAY, DAY)
    assert layout.parse_backtest_key(report.replace("01-15.json", "02-31.json")) is None  # no such day
    for key in others(report):
        assert layout.parse_backtest_key(key) is None, key


def test_draft_backtest_and_tuning_keys_read_back_as_what_they_count() -> None:
    draft = layout.draft_backtest_key(MODEL, "0123456789abcdef", DAY, DAY)
    assert draft == f"inbox/backtests/{MODEL}/drafts/0123456789abcdef/2025-01-15_2025-01-15.json"
    assert layout.parse_draft_backtest_key(draft) == layout.DraftBacktestKey(
        MODEL, "0123456789abcdef", DAY, DAY
    )
    assert layout.parse_backtest_key(draft) is None
    tuning = layout.tuning_key(MODEL, JOB, 1000)
    assert layout.parse_tuning_key(tuning) == layout.TuningKey(MODEL, JOB, 1000)
    for key in others(draft, tuning):
        assert layout.parse_draft_backtest_key(key) is None, key
        assert layout.parse_tuning_key(key) is None, key
    with pytest.raises(ValueError, match="draft digest"):
        layout.draft_backtest_key(MODEL, "../../x", DAY, DAY)
    with pytest.raises(ValueError, match="job id"):
        layout.tuning_key(MODEL, "job-../x", 3)


def test_a_job_s_objects_live_under_its_owner_and_read_back() -> None:
    assert layout.job_key("bob", JOB, "request") == f"inbox/jobs/bob/{JOB}/request.json"
    for part, attempt in [
        ("request", None),
        ("attempt", 0),
        ("progress", 2),
        ("result", None),
        ("failed", None),
    ]:
        key = layout.job_key("bob", JOB, part, attempt)
        assert layout.parse_job_key(key) == layout.JobKey("bob", JOB, part, attempt)
    for key in others(layout.job_key("bob", JOB, "request")):
        assert layout.parse_job_key(key) is None, key
    for bad in ("job-1", "../x", "job-0123456789ABCDEF"):
        assert not layout.is_job_id(bad)
        with pytest.raises(ValueError):
            layout.job_prefix("bob", bad)
    with pytest.raises(ValueError):
        layout.job_key("bob", JOB, "progress")


def test_an_audit_record_key_reads_back_as_its_id() -> None:
    record = layout.audit_key("0f" * 16)
    assert layout.parse_audit_key(record) == "0f" * 16
    assert layout.parse_audit_key(f"{layout.AUDIT_INBOX}.{'0f' * 16}.json.0a1b.tmp") is None
    for key in others(record):
        assert layout.parse_audit_key(key) is None, key


def test_a_paid_attempt_reads_back_as_its_number_within_its_pair_only() -> None:
    assert layout.parse_paid_attempt_key(layout.paid_attempt_key("bob", MODEL, 2), "bob", MODEL) == 2
    for key in [
        layout.paid_attempt_key("bob", MODEL, 2, "session"),
        layout.paid_attempt_key("bob", MODEL, 2, "cancel"),
        layout.paid_attempt_key("carol", MODEL, 2),
        *others(layout.paid_attempt_key("bob", MODEL, 2)),
    ]:
        assert layout.parse_paid_attempt_key(key, "bob", MODEL) is None, key


def test_a_self_exclusion_reads_back_as_its_user_day_and_period() -> None:
    for period in ("30d", "6m", "1y", "permanent"):
        key = layout.self_exclusion_key("bob", DAY, period)
        assert layout.parse_self_exclusion_key(key) == layout.SelfExclusionKey("bob", DAY, period)
    for key in [
        *others(layout.self_exclusion_key("bob", DAY, "6m")),
        "inbox/self_exclusions/bob/2025-02-30-30d.json",
        "inbox/self_exclusions/bob/2025-01-15-2w.json",
    ]:
        assert layout.parse_self_exclusion_key(key) is None, key
    with pytest.raises(ValueError, match="not a self-exclusion period"):
        layout.self_exclusion_key("bob", DAY, "2w")


def test_payout_intents_and_transfers_are_told_apart() -> None:
    intent, transfer = (
        layout.payout_intent_key("2025-01", "alice"),
        layout.payout_transfer_key("2025-01", "alice"),
    )
    assert layout.is_payout_intent_key(intent) and not layout.is_payout_transfer_key(intent)
    assert layout.is_payout_transfer_key(transfer) and not layout.is_payout_intent_key(transfer)
    attempt = layout.payout_attempt_key("2025-01", "alice")
    assert not layout.is_payout_intent_key(attempt) and not layout.is_payout_transfer_key(attempt)
    for key in others(intent, transfer):
        assert not layout.is_payout_intent_key(key) and not layout.is_payout_transfer_key(key), key


def test_a_connect_account_key_reads_back_as_its_creator() -> None:
    key = layout.stripe_account_key("alice")
    assert layout.stripe_account_creator(key) == "alice"
    for other in others():
        assert layout.stripe_account_creator(other) is None, other


def test_account_states_sort_by_the_time_stripe_reported_them() -> None:
    keys = [layout.account_state_key("alice", t, "evt_z") for t in (999_999_999, 1_000_000_000)]
    assert sorted(keys) == keys


def test_recorded_refunds_are_told_apart_and_ids_cannot_choose_a_path() -> None:
    refunded = layout.refund_key("sub_1", "in_2", "refunded")
    assert layout.is_refund_result_key(refunded)
    assert not layout.is_refund_result_key(layout.refund_key("sub_1", "in_2", "refunds"))
    assert not layout.is_refund_result_key(layout.cancellation_key("sub_1", "cancelled"))
    for key in others():
        assert not layout.is_refund_result_key(key), key
    for bad in ("../x", "sub_1/..", "sub 1", ""):
        with pytest.raises(ValueError, match="not a Stripe object id"):
            layout.cancellation_key(bad, "cancel")


def test_a_rate_limit_key_reads_back_as_the_millisecond_its_run_started() -> None:
    started = dt.datetime(2025, 1, 15, 12, 0, 0, 250_000, tzinfo=dt.UTC)
    key = layout.analyze_run_key("bob", started, "0a1b2c3d")
    assert layout.parse_analyze_run_key(key) == started
    for other in others(
        layout.analyze_run_key("bob", dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC), "0a1b2c3d")
    ):
        assert layout.parse_analyze_run_key(other) is None, other


def test_idempotency_records_read_back_as_their_user_key_and_attempt() -> None:
    digest = "ab" * 32
    claim, answer = (
        layout.idempotency_claim_key("bob", digest, 1),
        layout.idempotency_answer_key("bob", digest),
    )
    assert claim == f"idempotency/bob/{digest}/claim-001.json"
    assert layout.parse_idempotency_key(claim) == layout.IdempotencyKey("bob", digest, 1)
    assert layout.parse_idempotency_key(answer) == layout.IdempotencyKey("bob", digest, None)
    for key in others(claim):
        assert layout.parse_idempotency_key(key) is None, key


def test_temporary_names_are_hidden_and_recognised_with_their_write_ahead_log() -> None:
    temp = layout.temp_name("serving-20250115T120000-0a1b2c3d.duckdb", "ff00")
    assert temp == ".serving-20250115T120000-0a1b2c3d.duckdb.ff00.tmp"
    assert layout.is_temp_name(temp) and layout.is_temp_name(f"{temp}.wal")
    for name in ["serving-x.duckdb", ".gitignore", "x.tmp", layout.MARTS_POINTER]:
        assert not layout.is_temp_name(name), name


def test_a_serving_pointer_may_only_name_a_snapshot_in_its_folder() -> None:
    assert layout.is_serving_snapshot(layout.serving_snapshot_name(dt.datetime(2025, 1, 15), "0a1b2c3d"))
    for name in [layout.SERVING_POINTER, "../serving-x.duckdb", "serving-a/b.duckdb", "marts.duckdb"]:
        assert not layout.is_serving_snapshot(name), name
    assert layout.is_marts_build(layout.marts_build_name(dt.datetime(2025, 1, 15), "0a1b2c3d"))
    for name in [layout.MARTS_POINTER, "../marts-x", "marts-a/b", "marts-x.duckdb", ".marts-x.ff.tmp"]:
        assert not layout.is_marts_build(name), name


def test_follow_webhook_preferences_and_delivery_keys_read_back() -> None:
    assert layout.parse_follow_key(layout.follow_event_key("bob", "alice", 3)) == layout.FollowKey(
        "bob", "alice", 3
    )
    removed = layout.webhook_key("bob", "wh_0123456789abcdef", deleted=True)
    assert layout.parse_webhook_key(removed) == layout.WebhookKey("bob", "wh_0123456789abcdef", True)
    assert layout.parse_preferences_key(layout.preferences_key("bob", 2)) == 2
    channel = layout.webhook_channel("wh_0123456789abcdef")
    for record, n in (("attempt", 2), ("result", 2), ("dead", 0)):
        key = layout.delivery_record_key("bob", channel, NTF, record, n)  # type: ignore[arg-type]
        assert layout.parse_delivery_record_key(key) == layout.DeliveryRecordKey(
            "bob", channel, NTF, record, n
        )  # type: ignore[arg-type]
    assert layout.parse_delivery_record_key(f"inbox/deliveries/bob/sms/{NTF}/dead.json") is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: layout.model_prefix("not-a-model"),
        lambda: layout.dataset_prefix(MODEL),
        lambda: layout.review_key("a/b", 1),
        lambda: layout.rating_key("a/b", "0123456789abcdef", "text", 1),
        lambda: layout.rating_key(MODEL, "../0123456789ab", "reply"),
        lambda: layout.rating_key(MODEL, "0123456789abcdef", "helpful", user_id="../zoe"),
        lambda: layout.stripe_event_key("evt_1/../../tables/x"),
        lambda: layout.subscription_event_key("a/b", MODEL, 1),
        lambda: layout.analyze_runs_prefix("../bob"),
        lambda: layout.idempotency_answer_key("../bob", "ab" * 32),
        lambda: layout.idempotency_answer_key("bob", "../../tables"),
        lambda: layout.stripe_account_key("../bob"),
        lambda: layout.account_state_key("bob", 1, "evt_1/../x"),
        lambda: layout.account_state_key("bob", -1, "evt_1"),
        lambda: layout.creator_terms_key("bob", "../2026"),
        lambda: layout.check_terms_version(""),
        lambda: layout.self_exclusion_key("../bob", DAY, "30d"),
        lambda: layout.user_paid_attempts_prefix("a/b"),
        lambda: layout.follow_event_key("bob", "../alice", 1),
        lambda: layout.webhook_key("bob", "wh_../../x"),
        lambda: layout.preferences_key("../bob", 1),
        lambda: layout.delivery_record_key("bob", "../email", NTF, "dead"),
        lambda: layout.delivery_record_key("bob", "email", "ntf_../../x", "dead"),
    ],
)
def test_builders_refuse_ids_that_would_escape_their_folder(build: Callable[[], str]) -> None:
    with pytest.raises(ValueError):
        build()


def test_no_other_module_spells_out_a_lake_key() -> None:
    """Keys are built in ``stores/layout.py`` only: a string (or f-string) starting with a top-level
    lake folder anywhere else is a key built around it. Docstrings may describe the layout."""
    root = Path(__file__).resolve().parents[1]
    folders = ("raw/", "tables/", "inbox/", "cache/", "commitments/")
    found = set()
    for package in ("api", "assets", "cli", "pipelines", "resources", "services", "stores", "bench"):
        for path in sorted((root / package).rglob("*.py")):
            if path == root / "stores" / "layout.py":
                continue
            tree = ast.parse(path.read_text())
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                head = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
                if (
                    isinstance(head, ast.Constant)
                    and isinstance(head.value, str)
                    and id(head) not in docstrings
                    and head.value.startswith(folders)
                ):
                    found.add(f"{path.relative_to(root)}:{node.lineno}: {head.value!r}")
    assert not found, "\n".join(sorted(found))
