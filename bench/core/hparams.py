"""Checking hyperparameter values against the rules a method declares next to its defaults.

A rule is a tuple of allowed values (choices) or a `Range`. The value's type must match the
default's (bool, int, float — an int is accepted where the default is a float — or str; a float
must be finite). A default of None accepts None, or a value of the rule's kind: one of the
choices, or a finite number within a `Range` (an integer when the range says `integer=True`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from bench.core.errors import UsageError, did_you_mean


@dataclass(frozen=True)
class Range:
    """Numeric bounds: `gt` / `ge` below, `lt` / `le` above (None: unbounded); `integer`: whole numbers only
    (for a hyperparameter whose default, None, does not carry the type)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False

    def contains(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.integer and not isinstance(value, int):
            return False
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))

    def __str__(self) -> str:
        low = f"> {self.gt:g}" if self.gt is not None else f">= {self.ge:g}" if self.ge is not None else ""
        high = f"< {self.lt:g}" if self.lt is not None else f"<= {self.le:g}" if self.le is not None else ""
        bounds = " and ".join(part for part in (low, high) if part)
        if self.integer:
            return f"an integer {bounds}" if bounds else "an integer"
        return bounds or "any number"


Rule = Union[tuple, Range]


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    return "a string"


def _type_ok(value: Any, default: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, type(default))


def check_value(owner: str, key: str, value: Any, default: Any, rule: Rule | None) -> None:
    """A UsageError naming `owner`'s hyperparameter `key` when `value` breaks its type or rule."""
    if not _type_ok(value, default):
        raise UsageError(f"{owner}: hyperparameter {key} must be {_type_name(default)}, got {value!r}")
    if value is None or rule is None:
        return
    if isinstance(rule, Range):
        if not rule.contains(value):
            raise UsageError(f"{owner}: hyperparameter {key} must be {rule}, got {value!r}")
    elif value not in rule:
        raise UsageError(f"{owner}: hyperparameter {key} must be one of {', '.join(map(repr, rule))}, got {value!r}"
                         f"{did_you_mean(str(value), [str(c) for c in rule])}")


def resolve(owner: str, defaults: Mapping[str, Any], rules: Mapping[str, Rule], *layers: Mapping[str, Any] | None
            ) -> dict[str, Any]:
    """`defaults` updated by each layer of overrides in turn, every value checked.

    An unknown key is a UsageError with a suggestion and the list of known ones."""
    out = dict(defaults)
    for layer in layers:
        for key, value in (layer or {}).items():
            if key not in defaults:
                known = ", ".join(sorted(defaults)) or "none"
                raise UsageError(f"{owner} has no hyperparameter '{key}'{did_you_mean(key, defaults)}; "
                                 f"its hyperparameters: {known}")
            out[key] = value
    for key, value in out.items():
        check_value(owner, key, value, defaults[key], rules.get(key))
    return out
