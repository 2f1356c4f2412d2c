"""Bearer tokens: HS256 JWTs whose ``sub`` is the user id, with the identity provider's ``birthdate``
and ``region`` claims (SPEC 9; ``api/compliance.py`` judges them).

Decoding pins the algorithm list, issuer and audience and requires ``exp`` and ``iat``, so a token
signed with ``alg: none``, another key, or minted for another service is refused rather than trusted;
a token whose lifetime (``exp - iat``) exceeds the configured maximum is refused too, so a leaked
token is useful for a bounded time whatever its minter asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from domain.tiers import Tier, tier_of

ISSUER = "oddsforge"
AUDIENCE = "oddsforge-api"
ALGORITHM = "HS256"
DEFAULT_TTL_SECONDS = 24 * 3600
"""A minted token's lifetime and, unless ``ODDSFORGE_TOKEN_MAX_HOURS`` says otherwise, the longest
lifetime the API accepts."""
LEEWAY_SECONDS = 30
"""Clock skew tolerated between the machine that minted a token and the API."""
DEV_BIRTHDATE = "1990-01-01"
DEV_REGION = "US-NJ"
"""The identity :func:`mint_token` vouches for unless told otherwise: an adult in a region no
default policy blocks, so development tokens (``oddsforge token``, the tests) read picks."""


class InvalidTokenError(Exception):
    """The token cannot be trusted; the message says why without echoing the token."""


def mint_token(
    user_id: str,
    secret: str,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: dt.datetime | None = None,
    *,
    birthdate: str | None = DEV_BIRTHDATE,
    region: str | None = DEV_REGION,
    tier: str | None = None,
) -> str:
    """A signed token for ``user_id`` valid for ``ttl_seconds`` from ``now`` (default: the clock),
    vouching for ``birthdate``, ``region`` and ``tier`` (None leaves the claim out): the development
    stand-in for the identity provider."""
    if not user_id:
        raise ValueError("user_id must be non-empty")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    issued = now or dt.datetime.now(dt.UTC)
    claims = {
        "sub": user_id,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + dt.timedelta(seconds=ttl_seconds),
    }
    identity = {"birthdate": birthdate, "region": region, "tier": tier}
    claims |= {name: value for name, value in identity.items() if value is not None}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str, max_ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """The user id of a valid token living at most ``max_ttl_seconds``; raises
    :class:`InvalidTokenError` otherwise."""
    return verify_claims(token, secret, max_ttl_seconds)["sub"]


def verify_claims(token: str, secret: str, max_ttl_seconds: int = DEFAULT_TTL_SECONDS) -> dict[str, Any]:
    """The claims of a valid token living at most ``max_ttl_seconds`` (with a non-empty ``sub``);
    raises :class:`InvalidTokenError` otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidTokenError("token has expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidTokenError("token is issued in the future") from None
    except jwt.InvalidAudienceError:
        raise InvalidTokenError("token is not meant for this API") from None
    except jwt.InvalidIssuerError:
        raise InvalidTokenError("token was not issued by oddsforge") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidTokenError(f"token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidTokenError:
        raise InvalidTokenError("token is malformed or its signature is invalid") from None
    lifetime = float(claims["exp"]) - float(claims["iat"])
    if lifetime > max_ttl_seconds:
        raise InvalidTokenError(
            f"token lifetime (exp - iat) is {_hours(lifetime)}; this API accepts at most "
            f"{_hours(max_ttl_seconds)}"
        )
    if not claims["sub"]:
        raise InvalidTokenError("token has an empty subject")
    return claims


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h"


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` from `oddsforge token`.")


def _unauthorized(message: str, error: str | None = None) -> ApiError:
    # RFC 6750 section 3: name the scheme; add `error` only when a token was presented.
    challenge = f'Bearer realm="oddsforge", error="{error}"' if error else 'Bearer realm="oddsforge"'
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


_VERIFIED = "oddsforge.verified_token"
"""Scope key of the (token, claims) this request's token was verified as."""


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """FastAPI dependency: the authenticated user id, or a 401 error.

    A token is verified once per request (about 50 us of CPU) however many callers ask: the request
    guard (``api/guard.py``) asks before the route does.
    """
    if credentials is None:
        raise _unauthorized("missing bearer token")
    verified = request.scope.get(_VERIFIED)
    if verified is not None and verified[0] == credentials.credentials:
        return verified[1]["sub"]
    try:
        settings = request.app.state.settings
        claims = verify_claims(credentials.credentials, settings.jwt_secret, settings.token_max_ttl_seconds)
    except InvalidTokenError as exc:
        raise _unauthorized(str(exc), "invalid_token") from None
    request.scope[_VERIFIED] = (credentials.credentials, claims)
    return claims["sub"]


def token_claims(request: Request) -> Mapping[str, Any]:
    """The claims of the token :func:`current_user` verified for this request (call it after)."""
    verified = request.scope.get(_VERIFIED)
    if verified is None:
        raise RuntimeError("token_claims needs current_user to have verified the request's token")
    return verified[1]


CurrentUser = Annotated[str, Depends(current_user)]


async def caller_tier(request: Request, _: CurrentUser) -> Tier:
    """FastAPI dependency: the caller's tier from the ``tier`` claim of the verified token."""
    return tier_of(token_claims(request).get("tier"))


CallerTier = Annotated[Tier, Depends(caller_tier)]
