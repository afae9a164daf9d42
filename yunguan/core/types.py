"""Field types shared by every API schema: strict, bounded, free of control characters."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)


def _printable(value: str) -> str:
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in value):
        raise ValueError("control characters are not allowed")
    return value


def _single_line(value: str) -> str:
    if any(c in value for c in "\t\n\r"):
        raise ValueError("must be a single line")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_printable),
    AfterValidator(_single_line),
]
Label = Annotated[
    str, StringConstraints(max_length=128), AfterValidator(_printable), AfterValidator(_single_line)
]
Text = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_printable)]
Identifier = Annotated[
    str, StringConstraints(min_length=3, max_length=40, pattern=r"^[a-z]+-[0-9a-z]+$")
]
Username = Annotated[
    str, StringConstraints(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
]
Email = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^$|^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+$")
]
Password = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(_printable)
]


def _representable(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range")


UtcTime = Annotated[AwareDatetime, AfterValidator(_representable)]


def _not_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError('give money as a string ("12.50"): a float is not exact')
    return value


NoFloat = BeforeValidator(_not_float)

Money = Annotated[
    Decimal,
    NoFloat,
    Field(ge=0, le=10**12, decimal_places=4),
    PlainSerializer(str, return_type=str, when_used="json"),
]
"""An amount of money: a decimal string (or integer) in, a string out; never a float."""
Amount = Annotated[Decimal, PlainSerializer(str, return_type=str, when_used="json")]
"""An amount of money the platform computed (a product, a sum), shown as a string."""


class Input(BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)
