"""API settings, read from the environment once when the app is created (never at import)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from api.auth import DEFAULT_TTL_SECONDS
from domain.compliance.eligibility import RegionPolicy
from domain.compliance.legal import DEFAULT_TERMS_VERSION
from domain.errors import UserError
from domain.marketplace.notify import WebhookPolicy
from services.notify import webhook_policy_from_env
from stores.layout import JWT_SECRET_FILE, SERVING_DIR, check_terms_version
from stores.secrets import dev_jwt_secret

DEFAULT_WEB_URL = "http://localhost:3000"
"""Where the web client runs in development: Stripe sends subscribers and creators back to its pages."""
MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output (256 bits)."""

Environment = Literal["development", "production"]
_N = TypeVar("_N", int, float)


class SettingsError(UserError, ValueError):
    """The environment describes a configuration the API refuses to start with."""


@dataclass(frozen=True)
class ApiSettings:
    jwt_secret: str
    warehouse_dir: Path = Path("data/warehouse")
    environment: Environment = "development"
    snapshot_check_seconds: float = 0.5
    """How often, at most, a request re-reads the serving pointer's ``stat``."""
    token_max_ttl_seconds: int = DEFAULT_TTL_SECONDS
    """Tokens whose lifetime (``exp - iat``) is longer are refused; ``oddsforge token`` mints within it."""
    jwt_secret_file: Path | None = None
    """Where the development secret was read from; None when it came from ``ODDSFORGE_JWT_SECRET``."""
    read_limit: int = 1200
    """Reads (GET, HEAD) one user, or one address without a valid token, may make per
    ``read_window_seconds`` in each worker process, in bursts of up to all of them (``api/rate_limit.py``);
    0 turns the limit off."""
    read_window_seconds: float = 60.0
    checkout_success_url: str = f"{DEFAULT_WEB_URL}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    """Where Stripe Checkout sends a subscriber who paid or started a trial (Stripe fills in
    ``{CHECKOUT_SESSION_ID}``); access follows once Stripe's webhooks arrive."""
    checkout_cancel_url: str = f"{DEFAULT_WEB_URL}/billing/cancelled"
    """Where Stripe Checkout sends a subscriber who gave up."""
    billing_return_url: str = f"{DEFAULT_WEB_URL}/account"
    """Where the Stripe billing portal sends a subscriber back to."""
    creator_terms_version: str = DEFAULT_TERMS_VERSION
    """The creator terms a creator must accept (``POST /creators/me/terms``) to publish paid models."""
    user_terms_version: str = DEFAULT_TERMS_VERSION
    """The user terms ``GET /legal`` names."""
    onboarding_refresh_url: str = f"{DEFAULT_WEB_URL}/creators/payout-account/refresh"
    """Where Stripe sends a creator whose onboarding link expired (the page asks for a new one)."""
    onboarding_return_url: str = f"{DEFAULT_WEB_URL}/creators/payout-account"
    """Where Stripe sends a creator who left onboarding (finished or not)."""
    region_policy: RegionPolicy = field(default_factory=RegionPolicy)
    """Blocked regions and minimum-age overrides (``ODDSFORGE_BLOCKED_REGIONS``, ``ODDSFORGE_MIN_AGE``)."""
    webhook_loopback_http: bool = False
    """Plain HTTP webhooks to loopback addresses (``ODDSFORGE_WEBHOOK_LOOPBACK_HTTP=1``; tests, the demo)."""

    def __post_init__(self) -> None:
        if self.environment not in ("development", "production"):
            raise SettingsError(f"ODDSFORGE_ENV must be development or production, not {self.environment!r}")
        if self.environment == "production" and (not self.jwt_secret or self.jwt_secret_file is not None):
            raise SettingsError("ODDSFORGE_JWT_SECRET must be set when ODDSFORGE_ENV=production")
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            source = self.jwt_secret_file or "ODDSFORGE_JWT_SECRET"
            raise SettingsError(f"{source} must hold a secret of at least {MIN_SECRET_BYTES} bytes")
        if self.token_max_ttl_seconds <= 0:
            raise SettingsError("ODDSFORGE_TOKEN_MAX_HOURS must be positive")
        if self.webhook_loopback_http and self.environment == "production":
            raise SettingsError("ODDSFORGE_WEBHOOK_LOOPBACK_HTTP is for development only")
        if self.read_limit < 0 or not 0 < self.read_window_seconds < math.inf:
            raise SettingsError("ODDSFORGE_READ_LIMIT must be >= 0 and ODDSFORGE_READ_WINDOW_SECONDS > 0")
        for name, url in _URL_SETTINGS.items():
            if not getattr(self, url).startswith(("https://", "http://")):
                raise SettingsError(f"{name} must be an http(s) URL, not {getattr(self, url)!r}")
        try:
            check_terms_version(self.creator_terms_version)
        except ValueError as exc:
            raise SettingsError(f"ODDSFORGE_CREATOR_TERMS_VERSION: {exc}") from None

    @property
    def serving_dir(self) -> Path:
        """Where the pipeline publishes ``serving-*.duckdb`` snapshots and the ``CURRENT`` pointer."""
        return self.warehouse_dir / SERVING_DIR

    @property
    def webhook_policy(self) -> WebhookPolicy:
        """Where users' webhooks may go: the same rules as the pipeline's delivery run."""
        return WebhookPolicy(
            production=self.environment == "production", loopback_http=self.webhook_loopback_http
        )

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret_file is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Settings from ``ODDSFORGE_WAREHOUSE_DIR``, ``ODDSFORGE_JWT_SECRET``, ``ODDSFORGE_ENV``,
        ``ODDSFORGE_TOKEN_MAX_HOURS``, ``ODDSFORGE_READ_LIMIT``, ``ODDSFORGE_READ_WINDOW_SECONDS``,
        ``ODDSFORGE_BLOCKED_REGIONS`` (``US-WA,US-ID``), ``ODDSFORGE_MIN_AGE`` (``US-NY=21,GB=18``),
        ``ODDSFORGE_USER_TERMS_VERSION``, ``ODDSFORGE_CREATOR_TERMS_VERSION`` and the web client's
        pages Stripe sends people back to (:data:`_URL_SETTINGS`, defaults under :data:`DEFAULT_WEB_URL`).

        Without ``ODDSFORGE_JWT_SECRET`` in development the secret is the warehouse directory's own
        (``{warehouse}/jwt-secret``, generated on first use, mode 0600), so tokens minted by
        ``oddsforge token`` over the same directory are accepted and nobody else's are.
        """
        env = os.environ if environ is None else environ
        warehouse_dir = Path(env.get("ODDSFORGE_WAREHOUSE_DIR") or "data/warehouse")
        environment = env.get("ODDSFORGE_ENV") or "development"
        secret, secret_file = env.get("ODDSFORGE_JWT_SECRET") or "", None
        if not secret and environment == "development":
            secret_file = warehouse_dir / JWT_SECRET_FILE
            secret = dev_jwt_secret(secret_file)
        return cls(
            jwt_secret=secret,
            warehouse_dir=warehouse_dir,
            environment=environment,  # type: ignore[arg-type]
            token_max_ttl_seconds=_max_ttl_seconds(env.get("ODDSFORGE_TOKEN_MAX_HOURS")),
            jwt_secret_file=secret_file,
            read_limit=_number(env, "ODDSFORGE_READ_LIMIT", int, cls.read_limit),
            read_window_seconds=_number(env, "ODDSFORGE_READ_WINDOW_SECONDS", float, cls.read_window_seconds),
            **{url: env.get(name) or getattr(cls, url) for name, url in _URL_SETTINGS.items()},
            creator_terms_version=env.get("ODDSFORGE_CREATOR_TERMS_VERSION") or cls.creator_terms_version,
            user_terms_version=env.get("ODDSFORGE_USER_TERMS_VERSION") or cls.user_terms_version,
            region_policy=_region_policy(env),
            webhook_loopback_http=_webhook_policy(env).loopback_http,
        )


_URL_SETTINGS = {
    "ODDSFORGE_CHECKOUT_SUCCESS_URL": "checkout_success_url",
    "ODDSFORGE_CHECKOUT_CANCEL_URL": "checkout_cancel_url",
    "ODDSFORGE_BILLING_RETURN_URL": "billing_return_url",
    "ODDSFORGE_ONBOARDING_REFRESH_URL": "onboarding_refresh_url",
    "ODDSFORGE_ONBOARDING_RETURN_URL": "onboarding_return_url",
}
"""Environment variable -> setting, for the pages Stripe sends subscribers and creators to."""


def _webhook_policy(env: Mapping[str, str]) -> WebhookPolicy:
    try:
        return webhook_policy_from_env(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _region_policy(env: Mapping[str, str]) -> RegionPolicy:
    try:
        return RegionPolicy.parse(env.get("ODDSFORGE_BLOCKED_REGIONS", ""), env.get("ODDSFORGE_MIN_AGE", ""))
    except ValueError as exc:
        raise SettingsError(f"ODDSFORGE_BLOCKED_REGIONS / ODDSFORGE_MIN_AGE: {exc}") from None


def _max_ttl_seconds(hours: str | None) -> int:
    if not hours:
        return DEFAULT_TTL_SECONDS
    try:
        value = float(hours)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"ODDSFORGE_TOKEN_MAX_HOURS must be a positive number of hours, not {hours!r}")
    return round(value * 3600)


def _number(env: Mapping[str, str], name: str, kind: type[_N], default: _N) -> _N:
    value = env.get(name)
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {value!r}") from None
