"""Odds arithmetic: American and decimal prices, implied and no-vig probabilities."""

from __future__ import annotations

import polars as pl

ASSUMED_AMERICAN = -110
"""Price assumed on both sides when a history source has a line but no price (SPEC section 5)."""


def american_to_decimal(american: float) -> float:
    """-110 -> 1.909..., +150 -> 2.5. Zero and |x| < 100 are not American prices."""
    if abs(american) < 100:
        raise ValueError(f"not an American price: {american}")
    return 1 + (american / 100 if american > 0 else 100 / -american)


def american_to_decimal_expr(col: pl.Expr) -> pl.Expr:
    """Vectorised :func:`american_to_decimal`; values with |x| < 100 become null."""
    return pl.when(col >= 100).then(1 + col / 100).when(col <= -100).then(1 + 100 / -col).otherwise(None)


def decimal_to_american(decimal: float) -> int:
    """2.5 -> +150, 1.909 -> -110 (rounded to the nearest integer)."""
    if decimal <= 1:
        raise ValueError(f"not a decimal price: {decimal}")
    return round((decimal - 1) * 100) if decimal >= 2 else round(-100 / (decimal - 1))


def no_vig_first_expr(price_first: pl.Expr, price_second: pl.Expr) -> pl.Expr:
    """No-vig probability of the first side: implied probabilities normalised to sum to one."""
    inv_first, inv_second = 1 / price_first, 1 / price_second
    return inv_first / (inv_first + inv_second)
