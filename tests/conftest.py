"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.s3", "tests.services", "tests.stripe_server"]

INTEGRATION_MODULES = frozenset(
    {
        "test_analyses",
        "test_api",
        "test_api_contract",
        "test_audit_table",
        "test_backtest_jobs",
        "test_cli",
        "test_compliance",
        "test_creators",
        "test_datasets_api",
        "test_datasets_pipeline",
        "test_dbt",
        "test_fair_cancellation",
        "test_ge_quality",
        "test_history_import",
        "test_ingest_assets",
        "test_lake",
        "test_limits",
        "test_marketplace",
        "test_models_registry",
        "test_notify",
        "test_odds_api",
        "test_ops_automation",
        "test_ops_faults",
        "test_ops_services",
        "test_partial_data",
        "test_payments",
        "test_payments_flow",
        "test_verify",
        "test_ratings_api",
        "test_tuning",
    }
)
"""Modules that start servers (S3, Stripe, the API, Postgres, Redis, Dagster), run Dagster jobs or
dbt, or read the real history files: marked ``integration``. The rest is the unit suite
(``make unit``, about a minute); ``make test`` runs both."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The project's root folder."""
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data(repo_root: Path) -> Path:
    """``<repo>/../shared/data``: real data files used as test fixtures, never copied into the repo."""
    path = repo_root.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path}")
    return path
