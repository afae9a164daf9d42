"""Typed parameters of a service template, and the spec that refers to them. Pure: no
database, no principal.

A parameter is checked when it is defined (its own default must satisfy it). An order's
values are checked and completed against the parameters by :func:`complete`. A spec refers
to a parameter as ``{"param": "<name>"}`` anywhere inside it; :func:`check_spec` makes sure
every reference names a declared parameter and the kind's required keys are there, and
:func:`render` substitutes the values.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from yunguan.core.errors import Unprocessable, summary
from yunguan.core.types import Input, Label, Text

TYPES = ("string", "integer", "number", "boolean", "choice")
MAX_VALUE_LENGTH = 4096
MAX_DEPTH = 16
# the keys a spec of each kind must give, as a fixed value or a reference
REQUIRED_KEYS = {
    "instance": ("flavor_id", "image_id"),
    "cloud-instance": ("flavor_id", "image_id"),
    "baremetal": ("flavor_id", "image_id"),
    "external": ("webhook_url",),
    "bundle": ("instances",),
}
# constraints and the parameter types they apply to
APPLIES_TO = {
    "minimum": ("integer", "number"),
    "maximum": ("integer", "number"),
    "choices": ("choice",),
    "choice_labels": ("choice",),
    "pattern": ("string",),
    "max_length": ("string",),
}

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
Number = int | Annotated[float, Field(allow_inf_nan=False)]
Value = Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH)] | bool | Number


class Parameter(Input):
    """One typed input of a template, with its constraints."""

    name: Slug
    type: Literal[TYPES]  # type: ignore[valid-type]
    label: Label = ""
    description: Text = ""
    default: Value | None = None
    required: bool = False
    minimum: Number | None = None
    maximum: Number | None = None
    choices: Annotated[list[Label], Field(min_length=1, max_length=100)] | None = None
    choice_labels: Annotated[dict[Label, Label], Field(max_length=100)] | None = Field(
        None, description="what the order form shows for a choice (default: the choice)"
    )
    pattern: Annotated[str, StringConstraints(max_length=256)] | None = None
    max_length: Annotated[int, Field(ge=1, le=MAX_VALUE_LENGTH)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Parameter":
        misplaced = [k for k, types in APPLIES_TO.items() if getattr(self, k) is not None]
        misplaced = [k for k in misplaced if self.type not in APPLIES_TO[k]]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)}: not for a {self.type} parameter")
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice parameter needs choices")
        if self.choices and len(set(self.choices)) < len(self.choices):
            raise ValueError("choices must be distinct")
        if strays := sorted(set(self.choice_labels or ()) - set(self.choices or ())):
            raise ValueError(f"choice_labels for what is not a choice: {', '.join(strays)}")
        if None not in (self.minimum, self.maximum) and self.minimum > self.maximum:  # type: ignore[operator]
            raise ValueError("minimum is above maximum")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}")
        if self.default is not None and (fault := fault_of(self, self.default)):
            raise ValueError(f"default {fault}")
        return self


def _distinct_names(parameters: list[Parameter]) -> list[Parameter]:
    names = [p.name for p in parameters]
    if len(set(names)) < len(names):
        raise ValueError("parameter names must be distinct")
    return parameters


Parameters = Annotated[list[Parameter], Field(max_length=100), AfterValidator(_distinct_names)]


def fault_of(parameter: Parameter, value: Any) -> str | None:
    """What is wrong with ``value`` for ``parameter`` (None: nothing)."""
    kind = parameter.type
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "choice":
        return None if value in (parameter.choices or ()) else "must be one of the choices"
    if kind == "string":
        return _string_fault(parameter, value)
    numeric = int if kind == "integer" else (int, float)
    if isinstance(value, bool) or not isinstance(value, numeric):
        return f"must be {'an integer' if kind == 'integer' else 'a number'}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be finite"
    if parameter.minimum is not None and value < parameter.minimum:
        return f"must be at least {parameter.minimum}"
    if parameter.maximum is not None and value > parameter.maximum:
        return f"must be at most {parameter.maximum}"
    return None


def _string_fault(parameter: Parameter, value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    limit = parameter.max_length or MAX_VALUE_LENGTH
    if len(value) > limit:
        return f"must be at most {limit} characters"
    if parameter.pattern is not None and re.fullmatch(parameter.pattern, value) is None:
        return f"must match {parameter.pattern}"
    return None


def _error(loc: Sequence[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": [str(part) for part in loc], "msg": msg, "type": kind}


def _refuse(errors: list[dict[str, Any]], code: str) -> None:
    if errors:
        raise Unprocessable(summary(errors), code=code, errors=errors)


def complete(parameters: Sequence[Parameter], values: Mapping[str, Any]) -> dict[str, Any]:
    """An order's ``values`` checked against ``parameters``, with the defaults filled in.
    Every fault (unknown name, missing required value, value out of its constraints) is
    listed in one 422 problem (code ``invalid-parameters``)."""
    declared = {p.name: p for p in parameters}
    unknown = [name for name in values if name not in declared]
    errors = [_error(["values", name], "unknown parameter", "unknown") for name in unknown]
    completed: dict[str, Any] = {}
    for parameter in parameters:
        value = values.get(parameter.name, parameter.default)
        if value is None:
            if parameter.required:
                errors.append(_error(["values", parameter.name], "required", "missing"))
        elif fault := fault_of(parameter, value):
            errors.append(_error(["values", parameter.name], fault, "invalid"))
        else:
            completed[parameter.name] = value
    _refuse(errors, "invalid-parameters")
    return completed


class SpecError(ValueError):
    pass


def _is_reference(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and isinstance(node.get("param"), str)


def _substitute(node: Any, replace: Callable[[str], Any], depth: int = 0) -> Any:
    """A copy of ``node`` (which must be plain JSON) with each reference replaced."""
    if depth > MAX_DEPTH:
        raise SpecError(f"nested deeper than {MAX_DEPTH} levels")
    if _is_reference(node):
        return replace(node["param"])
    if isinstance(node, dict):
        if not all(isinstance(key, str) for key in node):
            raise SpecError("keys must be strings")
        return {k: _substitute(v, replace, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, replace, depth + 1) for v in node]
    if isinstance(node, float) and not math.isfinite(node):
        raise SpecError("numbers must be finite")
    if node is None or isinstance(node, str | int | float | bool):
        return node
    raise SpecError(f"a {type(node).__name__} is not a JSON value")


def check_spec(kind: str, spec: Mapping[str, Any], parameters: Sequence[Parameter]) -> None:
    """A 422 problem (code ``invalid-spec``) listing what is wrong with a spec of ``kind``:
    not plain JSON, a reference to an undeclared parameter, a required key missing."""
    declared = {p.name for p in parameters}
    named: list[str] = []
    try:
        _substitute(dict(spec), lambda name: named.append(name))
    except SpecError as exc:
        _refuse([_error(["spec"], str(exc), "invalid")], "invalid-spec")
    errors = [
        _error(["spec"], f"refers to undeclared parameter {name!r}", "unknown-parameter")
        for name in dict.fromkeys(named)
        if name not in declared
    ]
    for key in REQUIRED_KEYS[kind]:
        if spec.get(key) is None:
            errors.append(_error(["spec", key], f"required for {kind} templates", "missing"))
    if kind == "external" and _is_reference(spec.get("webhook_url")):
        # its calls are signed: a tenant must not choose where they go
        errors.append(_error(["spec", "webhook_url"], "must be fixed, not a parameter", "invalid"))
    if kind == "bundle" and not isinstance(spec.get("instances", []), list):
        errors.append(_error(["spec", "instances"], "must be a list", "invalid"))
    _refuse(errors, "invalid-spec")


def render(spec: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with every reference replaced by its value (null when it has none)."""
    return _substitute(dict(spec), values.get)
