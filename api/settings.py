"""API settings, read from the environment once when the app is created (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stores.layout import SERVING_DIR

DEV_JWT_SECRET = "oddsforge-development-secret-do-not-use-in-production"
"""Used when ``ODDSFORGE_JWT_SECRET`` is unset outside production, so a fresh checkout just works.
Anyone with the source can mint tokens for it: the app logs a warning whenever it is in use."""

MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output (256 bits)."""

Environment = Literal["development", "production"]


class SettingsError(ValueError):
    """The environment describes a configuration the API refuses to start with."""


@dataclass(frozen=True)
class ApiSettings:
    warehouse_dir: Path = Path("data/warehouse")
    jwt_secret: str = DEV_JWT_SECRET
    environment: Environment = "development"
    snapshot_check_seconds: float = 0.5
    """How often, at most, a request re-reads the serving pointer's ``stat``."""

    def __post_init__(self) -> None:
        if self.environment not in ("development", "production"):
            raise SettingsError(f"ODDSFORGE_ENV must be development or production, not {self.environment!r}")
        if self.environment == "production" and self.jwt_secret == DEV_JWT_SECRET:
            raise SettingsError("ODDSFORGE_JWT_SECRET must be set when ODDSFORGE_ENV=production")
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"ODDSFORGE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")

    @property
    def serving_dir(self) -> Path:
        """Where the pipeline publishes ``serving-*.duckdb`` snapshots and the ``CURRENT`` pointer."""
        return self.warehouse_dir / SERVING_DIR

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret == DEV_JWT_SECRET

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Settings from ``ODDSFORGE_WAREHOUSE_DIR``, ``ODDSFORGE_JWT_SECRET`` and ``ODDSFORGE_ENV``."""
        env = os.environ if environ is None else environ
        return cls(
            warehouse_dir=Path(env.get("ODDSFORGE_WAREHOUSE_DIR") or "data/warehouse"),
            jwt_secret=env.get("ODDSFORGE_JWT_SECRET") or DEV_JWT_SECRET,
            environment=env.get("ODDSFORGE_ENV") or "development",  # type: ignore[arg-type]
        )
