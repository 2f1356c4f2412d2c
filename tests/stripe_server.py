"""pytest fixtures for the local Stripe (``cli/stripe_local.py``): Stripe's description loaded once per
session, a fresh server per test, and the platform's ``Payments`` client pointed at it (webhooks signed
with :data:`WEBHOOK_SECRET`). Skipped, with the path, where the description is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.stripe_local import SpecIndex, StripeServer, load_spec_index, spec_available, spec_dir
from services.payments import Payments

WEBHOOK_SECRET = "whsec_local_stripe_test_0123456789"
"""The signing secret the :func:`payments` client verifies webhooks with."""


@pytest.fixture(scope="session")
def stripe_spec(request: pytest.FixtureRequest) -> SpecIndex:
    """Stripe's description and fixtures, loaded once per session (cached in the pytest cache)."""
    if not spec_available():
        pytest.skip(f"Stripe OpenAPI description not found at {spec_dir()}")
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    return load_spec_index(cache_dir=Path(cache.mkdir("stripe_spec")) if cache else None)


@pytest.fixture
def stripe_server(stripe_spec: SpecIndex) -> Iterator[StripeServer]:
    """A fresh local Stripe (no objects, no idempotency keys) for one test."""
    with StripeServer(stripe_spec) as server:
        yield server


@pytest.fixture
def payments(stripe_server: StripeServer) -> Payments:
    """The platform's Stripe client, talking to the local Stripe."""
    return Payments(api_key=stripe_server.api_key, webhook_secret=WEBHOOK_SECRET, api_base=stripe_server.url)
