"""Creators' payout accounts (SPEC 8): the state of a Stripe Express Connect account that matters here.

Stripe reports an account's state on creation and in every ``account.updated`` event, each time the
whole account object. Three fields decide what the platform may do: ``details_submitted`` (the
creator finished Stripe's onboarding form), ``payouts_enabled`` (Stripe will pay the account out,
so transfers to it are worth making) and ``requirements.currently_due`` (what Stripe still needs).
A payout goes only to an account with ``payouts_enabled``; otherwise it waits for onboarding
(:func:`domain.money.payouts.plan_payouts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

CREATOR_METADATA = "creator_id"
"""The Connect account's metadata key naming its creator (set when the platform creates it)."""


@dataclass(frozen=True)
class AccountState:
    account_id: str
    details_submitted: bool
    payouts_enabled: bool
    requirements_due: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"requirements_due": list(self.requirements_due)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccountState:
        return cls(
            str(data["account_id"]),
            bool(data["details_submitted"]),
            bool(data["payouts_enabled"]),
            tuple(data["requirements_due"]),
        )


def account_state(account: Mapping[str, Any]) -> AccountState:
    """The state of a Stripe ``account`` object; ValueError when it is not one."""
    if account.get("object") != "account" or not isinstance(account.get("id"), str):
        raise ValueError("not a Stripe account object")
    requirements = account.get("requirements") or {}
    due = requirements.get("currently_due") or []
    if not isinstance(due, list) or not all(isinstance(item, str) for item in due):
        raise ValueError(f"account {account['id']}: requirements.currently_due is not a list of strings")
    return AccountState(
        account["id"],
        account.get("details_submitted") is True,
        account.get("payouts_enabled") is True,
        tuple(due),
    )


def account_creator(account: Mapping[str, Any]) -> str | None:
    """The creator a Connect account was created for (its metadata), None when it names none."""
    creator = (account.get("metadata") or {}).get(CREATOR_METADATA)
    return creator if isinstance(creator, str) and creator else None
