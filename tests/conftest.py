"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.s3", "tests.services"]


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
