"""The one decimal context of the aggregates, and DynamoDB's number rule.

Every addition, subtraction and rendering of an aggregate number (write, read, verify, CLI) goes through
this module. ``CONTEXT`` is wide enough that any sum or difference of two numbers DynamoDB can hold is
exact (an exponent span of 125 + 130 digits needs 256 digits), so arithmetic never raises for them; it
still traps ``Inexact``/``Rounded`` so that an absurd sum raises rather than rounds. Whether a result
can be *stored* is a separate, explicit question (``fits``): DynamoDB keeps 38 significant digits and
magnitudes from 1E-130 to below 1E+126. A value that does not fit raises ``NumberOutOfRange``, which the
writer turns into poison for the one item (never a crash of the batch).
"""

from __future__ import annotations

import decimal
import logging
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from projector.exceptions import ProjectorError

logger = logging.getLogger(__name__)

AttributeValue = dict[str, Any]
"""One DynamoDB attribute value in the low-level client's shape (``{"N": "1.5"}``)."""

DYNAMODB_DIGITS = 38
DYNAMODB_MAX_ADJUSTED = 125  # largest magnitude below 1E+126
DYNAMODB_MIN_ADJUSTED = -130  # smallest magnitude 1E-130

CONTEXT = decimal.Context(
    prec=400,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[
        decimal.InvalidOperation,
        decimal.DivisionByZero,
        decimal.Overflow,
        decimal.Inexact,
        decimal.Rounded,
    ],
)
"""Exact arithmetic for every value DynamoDB can hold (and far beyond): raises instead of rounding."""

_DISPLAY = CONTEXT.copy()
_DISPLAY.traps[decimal.Inexact] = False
_DISPLAY.traps[decimal.Rounded] = False


class NumberOutOfRange(ProjectorError, ValueError):
    """A result DynamoDB cannot store. The message names what, never the value."""


def parse(text: str) -> Decimal:
    """A DynamoDB ``N`` as an exact Decimal (whatever notation the server returned)."""
    return CONTEXT.create_decimal(text)


def add(a: Decimal, b: Decimal) -> Decimal:
    return CONTEXT.add(a, b)


def subtract(a: Decimal, b: Decimal) -> Decimal:
    return CONTEXT.subtract(a, b)


def fits(value: Decimal) -> bool:
    """True when DynamoDB can store ``value`` exactly: ≤ 38 significant digits, magnitude in range."""
    if not value.is_finite():
        return False
    if value.is_zero():
        return True
    significant = len("".join(map(str, value.as_tuple().digits)).rstrip("0"))
    adjusted = value.adjusted()
    return significant <= DYNAMODB_DIGITS and DYNAMODB_MIN_ADJUSTED <= adjusted <= DYNAMODB_MAX_ADJUSTED


def check(value: Decimal, what: str) -> Decimal:
    """``value`` if DynamoDB can store it, else ``NumberOutOfRange`` naming ``what`` (not the value)."""
    if not fits(value):
        raise NumberOutOfRange(
            f"{what} needs a number DynamoDB cannot store "
            f"(more than {DYNAMODB_DIGITS} significant digits, or magnitude out of range)"
        )
    return value


def to_text(value: Decimal | int) -> str:
    """Plain notation (never ``1E+2``), exact: DynamoDB's ``N`` text."""
    if isinstance(value, int):
        return str(value)
    return format(value, "f")


def render(value: Decimal, places: int) -> str:
    """Exactly ``places`` fractional digits, half-even; never raises for a value DynamoDB can hold."""
    quantized = value.quantize(Decimal(1).scaleb(-places, context=CONTEXT), context=_DISPLAY)
    return format(abs(quantized) if quantized == 0 else quantized, "f")


def number(value: Decimal | int) -> AttributeValue:
    """A DynamoDB number in plain notation (never ``1E+2``), exact."""
    return {"N": to_text(value)}


def decimal_of(value: AttributeValue) -> Decimal:
    return parse(value["N"])
