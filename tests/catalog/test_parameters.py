"""Typed parameters and spec references, without a database."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from yunguan.catalog.parameters import Parameter, check_spec, complete, render
from yunguan.core.errors import Unprocessable

SIZE = Parameter(name="size", type="choice", choices=["small", "large"], default="small")
DISK = Parameter(name="disk_gb", type="integer", minimum=10, maximum=500, required=True)
NAME = Parameter(name="hostname", type="string", pattern=r"[a-z][a-z0-9-]*", max_length=12)
SSD = Parameter(name="ssd", type="boolean", default=False)
RATIO = Parameter(name="ratio", type="number", minimum=0.5, maximum=2)


def faults(parameters: list[Parameter], values: dict) -> dict[str, str]:
    with pytest.raises(Unprocessable) as raised:
        complete(parameters, values)
    assert raised.value.code == "invalid-parameters"
    return {e["loc"][1]: e["msg"] for e in raised.value.extra["errors"]}


def test_defaults_are_filled_and_optional_values_left_out() -> None:
    values = complete([SIZE, DISK, NAME, SSD, RATIO], {"disk_gb": 40, "ratio": 1})
    assert values == {"size": "small", "disk_gb": 40, "ssd": False, "ratio": 1}


def test_every_violation_is_listed() -> None:
    found = faults(
        [SIZE, DISK, NAME, SSD, RATIO],
        {"size": "huge", "hostname": "Web_1", "ssd": "yes", "ratio": 3.5, "colour": "red"},
    )
    assert set(found) == {"size", "disk_gb", "hostname", "ssd", "ratio", "colour"}
    assert found["disk_gb"] == "required" and found["colour"] == "unknown parameter"
    assert "must match" in found["hostname"] and found["ratio"] == "must be at most 2"


@pytest.mark.parametrize("value", [True, 12.5, "12", None])
def test_integers_are_integers(value: object) -> None:
    assert "disk_gb" in faults([DISK], {"disk_gb": value})


def test_string_length_is_bounded() -> None:
    assert faults([NAME], {"hostname": "a" * 13}) == {"hostname": "must be at most 12 characters"}


@pytest.mark.parametrize(
    "definition",
    [
        {"name": "n", "type": "integer", "minimum": 3, "maximum": 2},
        {"name": "n", "type": "integer", "default": 1.5},
        {"name": "n", "type": "choice", "choices": ["a"], "default": "b"},
        {"name": "n", "type": "choice", "choices": ["a", "a"]},
        {"name": "n", "type": "choice"},
        {"name": "n", "type": "string", "pattern": "[", "default": "x"},
        {"name": "n", "type": "string", "pattern": "[a-z]+", "default": "X"},
        {"name": "n", "type": "string", "max_length": 2, "default": "abc"},
        {"name": "n", "type": "boolean", "choices": ["a"]},
        {"name": "n", "type": "integer", "pattern": "x"},
        {"name": "9n", "type": "string"},
        {"name": "n", "type": "string", "unknown": 1},
    ],
)
def test_definitions_are_checked(definition: dict) -> None:
    with pytest.raises(ValidationError):
        Parameter.model_validate(definition)


bounds = st.integers(min_value=-(10**6), max_value=10**6)


@given(low=bounds, high=bounds, value=st.integers(min_value=-(10**7), max_value=10**7))
def test_integer_ranges(low: int, high: int, value: int) -> None:
    low, high = min(low, high), max(low, high)
    parameter = Parameter(name="n", type="integer", minimum=low, maximum=high)
    try:
        assert complete([parameter], {"n": value}) == {"n": value}
        assert low <= value <= high
    except Unprocessable:
        assert not low <= value <= high


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)


@given(low=finite, high=finite, value=finite | st.integers(-(10**9), 10**9))
def test_number_ranges(low: float, high: float, value: float) -> None:
    low, high = min(low, high), max(low, high)
    parameter = Parameter(name="x", type="number", minimum=low, maximum=high)
    accepted = low <= value <= high
    try:
        complete([parameter], {"x": value})
        assert accepted
    except Unprocessable:
        assert not accepted


def test_spec_references() -> None:
    spec = {
        "flavor_id": {"param": "size"},
        "image_id": "img-1",
        "disks": [{"size_gb": {"param": "disk_gb"}, "ssd": {"param": "ssd"}}],
        "literal": {"param": "size", "other": 1},
    }
    check_spec("instance", spec, [SIZE, DISK, SSD])
    rendered = render(spec, {"size": "large", "disk_gb": 40})
    assert rendered["flavor_id"] == "large"
    assert rendered["disks"] == [{"size_gb": 40, "ssd": None}]
    assert rendered["literal"] == {"param": "size", "other": 1}
    with pytest.raises(Unprocessable) as raised:
        check_spec("instance", spec, [SIZE])
    assert {e["msg"] for e in raised.value.extra["errors"]} == {
        "refers to undeclared parameter 'disk_gb'",
        "refers to undeclared parameter 'ssd'",
    }


DEEP: list = [1]
for _ in range(20):
    DEEP = [DEEP]


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("instance", {"flavor_id": "f"}),
        ("baremetal", {"image_id": "i", "flavor_id": None}),
        ("external", {}),
        ("bundle", {"instances": {"a": 1}}),
        ("instance", {"flavor_id": "f", "image_id": "i", "deep": DEEP}),
        ("instance", {"flavor_id": "f", "image_id": "i", "ratio": float("nan")}),
    ],
)
def test_bad_specs(kind: str, spec: dict) -> None:
    with pytest.raises(Unprocessable) as raised:
        check_spec(kind, spec, [])
    assert raised.value.code == "invalid-spec"
