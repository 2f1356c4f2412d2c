"""The rules of follows and delivered notifications (pure): backoff and dead letters, webhook URLs,
preferences, new-model notices for followers and daily pick digests."""

from __future__ import annotations

import datetime as dt
import ipaddress

import polars as pl
import pytest

from domain.marketplace.listing import MODEL_STATUS
from domain.marketplace.notify import (
    ATTEMPT_LEASE,
    DELIVERY_WINDOW,
    FIRST_RETRY,
    MAX_RETRY,
    Attempt,
    Preferences,
    WebhookPolicy,
    address_problem,
    fold_follows,
    new_public_model_notifications,
    next_step,
    pick_digests,
    retry_delay,
    url_problem,
)
from domain.tables.schemas import conform

T0 = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
KEY = "ntf_" + "0" * 32


def test_retry_delays_double_with_jitter_up_to_an_hour() -> None:
    for n in range(1, 40):
        base = min(FIRST_RETRY * 2 ** (n - 1), MAX_RETRY)
        delay = retry_delay(KEY, n)
        assert base / 2 <= delay <= base
        assert delay == retry_delay(KEY, n), "the same delivery and attempt always wait alike"
    spread = {retry_delay(f"ntf_{i:032x}", 3) for i in range(50)}
    assert len(spread) > 40, "jitter spreads deliveries apart"


def test_a_delivery_is_sent_retried_after_its_backoff_and_dead_after_24_hours() -> None:
    assert next_step(KEY, [], T0).action == "send"
    first = [Attempt(1, T0, ok=False, detail="HTTP 500")]
    due = T0 + retry_delay(KEY, 1)
    assert next_step(KEY, first, due - dt.timedelta(seconds=1)) == next_step(KEY, first, T0)
    assert next_step(KEY, first, T0).action == "wait" and next_step(KEY, first, T0).due == due
    assert next_step(KEY, first, due).action == "send" and next_step(KEY, first, due).attempt == 2
    assert next_step(KEY, [*first, Attempt(2, due, ok=True)], due).action == "delivered"
    attempts, at = [], T0
    while (step := next_step(KEY, attempts, at)).action != "dead":
        assert step.action == "send"
        attempts.append(Attempt(step.attempt, at, ok=False))
        at = at + retry_delay(KEY, step.attempt)
    assert attempts[-1].at <= T0 + DELIVERY_WINDOW < attempts[-1].at + retry_delay(KEY, len(attempts))
    assert 24 < len(attempts) < 60, "hourly at most, every half hour at least, after the first doublings"


def test_an_attempt_without_result_is_in_flight_until_its_lease_ends_then_retried() -> None:
    crashed = [Attempt(1, T0)]
    assert next_step(KEY, crashed, T0 + ATTEMPT_LEASE - dt.timedelta(seconds=1)).action == "wait"
    later = T0 + ATTEMPT_LEASE + retry_delay(KEY, 1)
    assert next_step(KEY, crashed, later).attempt == 2


@pytest.mark.parametrize(
    ("url", "policy", "refused"),
    [
        ("https://hooks.example.com/x", WebhookPolicy(production=True), False),
        ("http://hooks.example.com/x", WebhookPolicy(), True),
        ("http://127.0.0.1:8080/x", WebhookPolicy(), True),
        ("http://127.0.0.1:8080/x", WebhookPolicy(loopback_http=True), False),
        ("http://localhost/x", WebhookPolicy(loopback_http=True), False),
        ("http://10.0.0.1/x", WebhookPolicy(loopback_http=True), True),
        ("http://127.0.0.1/x", WebhookPolicy(production=True, loopback_http=True), True),
        ("https://user:pw@hooks.example.com/", WebhookPolicy(), True),
        ("ftp://hooks.example.com/", WebhookPolicy(), True),
        ("https://hooks.example.com:99999/", WebhookPolicy(), True),
        ("https:///nohost", WebhookPolicy(), True),
        ("https://" + "a" * 3000 + ".com/", WebhookPolicy(), True),
    ],
)
def test_webhook_urls(url: str, policy: WebhookPolicy, refused: bool) -> None:
    assert (url_problem(url, policy) is not None) is refused


def test_in_production_every_resolved_address_must_be_public() -> None:
    prod = WebhookPolicy(production=True)
    public, private = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.1.2.3")
    assert address_problem([public], "https", prod) is None
    for bad in ("10.1.2.3", "127.0.0.1", "169.254.169.254", "::1", "fd00::1", "0.0.0.0"):
        assert address_problem([public, ipaddress.ip_address(bad)], "https", prod) is not None, bad
    assert address_problem([], "https", prod) is not None
    assert address_problem([private], "https", WebhookPolicy()) is None


def test_preferences_default_to_every_kind_on_every_channel_and_turn_channels_off() -> None:
    assert Preferences().wants("daily_picks", "webhook") and Preferences().wants("suspended", "email")
    prefs = Preferences(email="a@example.com", kinds={"suspended": ["email"]})
    assert prefs.wants("suspended", "email") and not prefs.wants("suspended", "webhook")
    assert not prefs.wants("new_version", "email")
    with pytest.raises(ValueError):
        Preferences(email="not an address")
    with pytest.raises(ValueError):
        Preferences.model_validate({"kinds": {"spam": ["email"]}})


def _status(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    frame = pl.DataFrame(
        [
            {"model_id": m, "owner_user_id": o, "status": s, "version": 1, "name": m, "sport": "nba"}
            for m, o, s in rows
        ]
    )
    return conform(frame, MODEL_STATUS)


def _follows(events: list[tuple[str, str, str, int]]) -> pl.DataFrame:
    return fold_follows(
        None,
        [{"user_id": u, "creator_id": c, "action": a, "n": n, "at": T0.isoformat()} for u, c, a, n in events],
    )


def test_the_latest_follow_event_of_a_pair_wins_and_folding_again_changes_nothing() -> None:
    table = _follows([("u", "bob", "follow", 1), ("u", "bob", "unfollow", 2), ("v", "bob", "follow", 1)])
    assert table.select("user_id", "following").rows() == [("u", False), ("v", True)]
    assert fold_follows(table, []).equals(table)


def test_followers_hear_of_a_creators_newly_listed_model_once() -> None:
    before = _status([("bob--a", "bob", "listed"), ("bob--b", "bob", "private")])
    after = _status([("bob--a", "bob", "listed"), ("bob--b", "bob", "listed"), ("bob--c", "bob", "listed")])
    follows = _follows([("u", "bob", "follow", 1), ("v", "bob", "follow", 1), ("v", "bob", "unfollow", 2)])
    sent = new_public_model_notifications(before, after, follows, T0)
    assert sent["notification_id"].to_list() == [
        "new_public_model:bob--b:v1:u",
        "new_public_model:bob--c:v1:u",
    ]
    assert new_public_model_notifications(after, after, follows, T0).height == 0
    assert new_public_model_notifications(before.clear(), after, follows, T0).height == 0, (
        "not on a first run"
    )


def test_one_digest_per_subscriber_and_day_only_near_the_clock() -> None:
    picks = pl.DataFrame(
        {"model_id": ["m1", "m1", "m2"], "name": ["Form", "Form", "Steam"], "game_id": ["g1", "g2", "g1"]}
    )
    subs = pl.DataFrame({"model_id": ["m1", "m2", "m2"], "user_id": ["u", "u", "v"]})
    day = T0.date()
    out = pick_digests(picks, subs, day, [], T0)
    assert out["notification_id"].to_list() == [f"daily_picks:{day}:u", f"daily_picks:{day}:v"]
    assert out["message"][0] == f"3 new picks for {day} from the models you subscribe to: Form (2), Steam (1)"
    assert pick_digests(picks, subs, day, ["u"], T0)["user_id"].to_list() == ["v"]
    assert pick_digests(picks, subs, day - dt.timedelta(days=30), [], T0).height == 0
