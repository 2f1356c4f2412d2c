"""The pure rules of SPEC 9: age on a day (birthdays, 29 February), each region's minimum, blocked
regions, the order of refusals, and self-exclusion periods that can be extended but never shortened."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.compliance.eligibility import (
    RegionPolicy,
    age_on,
    parse_birthdate,
    parse_region,
    verification_day,
)
from domain.compliance.self_exclusion import SelfExclusion, end_day, in_force

D = dt.date
T = dt.datetime(2026, 12, 7, 15, tzinfo=dt.UTC)


def test_age_turns_on_the_birthday_itself() -> None:
    born = D(2005, 12, 7)
    assert age_on(born, D(2026, 12, 6)) == 20
    assert age_on(born, D(2026, 12, 7)) == 21
    assert age_on(born, D(2027, 12, 6)) == 21
    assert age_on(born, D(2005, 12, 6)) == 0  # before birth: never negative


def test_someone_born_on_a_leap_day_comes_of_age_on_the_first_of_march_in_common_years() -> None:
    born = D(2004, 2, 29)
    assert age_on(born, D(2025, 2, 28)) == 20
    assert age_on(born, D(2025, 3, 1)) == 21
    assert age_on(born, D(2024, 2, 28)) == 19
    assert age_on(born, D(2024, 2, 29)) == 20


def test_ages_are_counted_on_the_date_where_it_is_earliest_on_earth() -> None:
    assert verification_day(dt.datetime(2026, 12, 7, 11, 59, tzinfo=dt.UTC)) == D(2026, 12, 6)
    assert verification_day(dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)) == D(2026, 12, 7)


def test_claims_are_read_strictly() -> None:
    assert parse_region("us-ny") == "US-NY" and parse_region("GB") == "GB"
    for bad in ["", "USA", "US_NY", "US-", "US-NEWY", None, 12]:
        assert parse_region(bad) is None, bad
    assert parse_birthdate("2004-02-29") == D(2004, 2, 29)
    for bad in ["2005-02-29", "0000-12-07", "2005", "07/12/2005", "2005-12-7", None, 20051207]:
        assert parse_birthdate(bad) is None, bad


def test_minimum_age_is_21_in_us_regions_and_18_elsewhere_unless_the_operator_overrides() -> None:
    default = RegionPolicy()
    assert [default.minimum_age(r) for r in ("US-NY", "US", "GB", "CA-ON")] == [21, 21, 18, 18]
    policy = RegionPolicy.parse("", "US-NY=19, US=20,CA-ON=19")
    assert [policy.minimum_age(r) for r in ("US-NY", "US-NJ", "CA-ON", "CA-QC")] == [19, 20, 19, 18]


def test_a_region_is_blocked_by_its_own_code_or_its_country() -> None:
    policy = RegionPolicy.parse("US-WA,us-id, AU")
    assert policy.blocked == frozenset({"US-WA", "US-ID", "AU"})
    assert [policy.is_blocked(r) for r in ("US-WA", "US-NY", "AU-NSW", "AU", "GB")] == [
        True,
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("blocked", "ages", "message"),
    [("US-W A", "", "blocked regions"), ("", "US-NY", "REGION=AGE"), ("", "US-NY=abc", "REGION=AGE")],
)
def test_a_bad_policy_is_refused_naming_the_part(blocked: str, ages: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegionPolicy.parse(blocked, ages)


def test_refusals_judge_the_region_before_the_age() -> None:
    policy = RegionPolicy.parse("US-WA")
    day = D(2026, 12, 7)
    twenty = "2006-06-01"
    assert policy.refusal(twenty, "US-NY", day)[0] == "age_verification_required"  # type: ignore[index]
    assert policy.refusal(twenty, "GB", day) is None
    assert policy.refusal("1990-01-01", "US-WA", day)[0] == "region_blocked"  # type: ignore[index]
    assert policy.refusal(None, "US-WA", day)[0] == "region_blocked"  # type: ignore[index]
    assert policy.refusal("1990-01-01", None, day)[0] == "region_blocked"  # type: ignore[index]
    assert policy.refusal(None, "GB", day)[0] == "age_verification_required"  # type: ignore[index]
    assert policy.refusal("2005-12-07", "US-NY", day) is None  # 21 today


def test_periods_end_on_calendar_days() -> None:
    assert end_day(D(2026, 12, 7), "30d") == D(2027, 1, 6)
    assert end_day(D(2026, 8, 31), "6m") == D(2027, 2, 28)
    assert end_day(D(2027, 8, 31), "6m") == D(2028, 2, 29)
    assert end_day(D(2028, 2, 29), "1y") == D(2029, 2, 28)
    assert end_day(D(2026, 12, 7), "permanent") is None


def _exclusion(period: str, start: dt.date) -> SelfExclusion:
    return SelfExclusion("ann", period, start, T)  # type: ignore[arg-type]


def test_the_exclusion_in_force_is_the_running_one_that_ends_last() -> None:
    month = _exclusion("30d", D(2026, 12, 7))
    year = _exclusion("1y", D(2026, 12, 20))
    forever = _exclusion("permanent", D(2027, 6, 1))
    assert in_force([], D(2026, 12, 7)) is None
    assert in_force([month], D(2026, 12, 6)) is None
    assert in_force([month], D(2026, 12, 7)) == month
    assert in_force([month], D(2027, 1, 6)) is None  # the end day is free again
    assert in_force([year, month], D(2026, 12, 25)) == year
    assert in_force([month, year, forever], D(2040, 1, 1)) == forever
    assert year.outlasts(month) and forever.outlasts(year) and not month.outlasts(year)
    assert not forever.outlasts(_exclusion("permanent", D(2026, 12, 7)))
    assert month.business_key == "self_exclusion:ann:2026-12-07:30d"


def test_the_region_policy_and_terms_versions_come_from_the_environment() -> None:
    from api.settings import ApiSettings, SettingsError

    env = {"ODDSFORGE_JWT_SECRET": "s" * 40}
    default = ApiSettings.from_env(env)
    assert (default.region_policy, default.user_terms_version, default.creator_terms_version) == (
        RegionPolicy(),
        "2026-12-01",
        "2026-12-01",
    )
    settings = ApiSettings.from_env(
        env
        | {
            "ODDSFORGE_BLOCKED_REGIONS": "US-WA,US-ID",
            "ODDSFORGE_MIN_AGE": "US-NY=21,GB=18",
            "ODDSFORGE_USER_TERMS_VERSION": "2027-01-02",
            "ODDSFORGE_CREATOR_TERMS_VERSION": "2027-01-15",
        }
    )
    assert settings.region_policy == RegionPolicy(frozenset({"US-WA", "US-ID"}), {"US-NY": 21, "GB": 18})
    assert (settings.user_terms_version, settings.creator_terms_version) == ("2027-01-02", "2027-01-15")
    with pytest.raises(SettingsError, match="ODDSFORGE_BLOCKED_REGIONS"):
        ApiSettings.from_env(env | {"ODDSFORGE_BLOCKED_REGIONS": "Washington"})
