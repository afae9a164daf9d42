"""Money arithmetic: exact decimals, rounded once, half up, to the currency's minor unit."""

from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

MINOR_UNITS = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0, "KRW": 0}
CURRENCIES = tuple(MINOR_UNITS)

EXACT = Context(prec=50, rounding=ROUND_HALF_UP)
"""Enough digits that no product or quotient of prices and seconds loses anything that
rounding to a cent could see."""


def exact(value: Decimal) -> Decimal:
    """``value`` at full precision, as a column of ten places keeps it."""
    with localcontext(EXACT):
        return +value


def round_minor(value: Decimal, currency: str) -> Decimal:
    """The one rounding of an amount: ROUND_HALF_UP to the currency's minor unit."""
    quantum = Decimal(1).scaleb(-MINOR_UNITS[currency])
    with localcontext(EXACT):
        return value.quantize(quantum, rounding=ROUND_HALF_UP)


def plain(value: Decimal) -> str:
    """``value`` without trailing zeros or an exponent: ``40``, ``35.5``."""
    return format(exact(value).normalize(), "f")
