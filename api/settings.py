"""API settings, read from the environment once when the app is created (never at import)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

DEV_JWT_SECRET = "oddsforge-development-secret-do-not-use-in-production"
"""Used when ``ODDSFORGE_JWT_SECRET`` is unset outside production, so a fresh checkout just works.
Anyone with the source can mint tokens for it: the app logs a warning whenever it is in use."""

MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output (256 bits)."""

Environment = Literal["development", "production"]
_N = TypeVar("_N", int, float)


class SettingsError(ValueError):
    """The environment describes a configuration the API refuses to start with."""


@dataclass(frozen=True)
class ApiSettings:
    warehouse_dir: Path = Path("data/warehouse")
    jwt_secret: str = DEV_JWT_SECRET
    environment: Environment = "development"
    snapshot_check_seconds: float = 0.5
    """How often, at most, a request re-reads the serving pointer's ``stat``."""
    read_limit: int = 1200
    """Reads (GET, HEAD) one user, or one address without a valid token, may make per
    ``read_window_seconds`` in each worker process, in bursts of up to all of them (``api/rate_limit.py``);
    0 turns the limit off."""
    read_window_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.environment not in ("development", "production"):
            raise SettingsError(f"ODDSFORGE_ENV must be development or production, not {self.environment!r}")
        if self.environment == "production" and self.jwt_secret == DEV_JWT_SECRET:
            raise SettingsError("ODDSFORGE_JWT_SECRET must be set when ODDSFORGE_ENV=production")
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"ODDSFORGE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")
        if self.read_limit < 0 or not 0 < self.read_window_seconds < math.inf:
            raise SettingsError("ODDSFORGE_READ_LIMIT must be >= 0 and ODDSFORGE_READ_WINDOW_SECONDS > 0")

    @property
    def serving_dir(self) -> Path:
        """Where the pipeline publishes ``serving-*.duckdb`` snapshots and the ``CURRENT`` pointer."""
        return self.warehouse_dir / "serving"

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret == DEV_JWT_SECRET

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Settings from ``ODDSFORGE_WAREHOUSE_DIR``, ``ODDSFORGE_JWT_SECRET``, ``ODDSFORGE_ENV``,
        ``ODDSFORGE_READ_LIMIT`` and ``ODDSFORGE_READ_WINDOW_SECONDS``."""
        env = os.environ if environ is None else environ
        return cls(
            warehouse_dir=Path(env.get("ODDSFORGE_WAREHOUSE_DIR") or "data/warehouse"),
            jwt_secret=env.get("ODDSFORGE_JWT_SECRET") or DEV_JWT_SECRET,
            environment=env.get("ODDSFORGE_ENV") or "development",  # type: ignore[arg-type]
            read_limit=_number(env, "ODDSFORGE_READ_LIMIT", int, cls.read_limit),
            read_window_seconds=_number(env, "ODDSFORGE_READ_WINDOW_SECONDS", float, cls.read_window_seconds),
        )


def _number(env: Mapping[str, str], name: str, kind: type[_N], default: _N) -> _N:
    value = env.get(name)
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {value!r}") from None
