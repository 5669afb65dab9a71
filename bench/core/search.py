"""Search spaces: the distribution of each hyperparameter `bench tune` samples, declared by a method
next to its defaults (`Method.search_space`).

A `Dim` is one hyperparameter's distribution: `LogUniform(low, high)`, `Uniform(low, high)`,
`IntUniform(low, high)` (both ends included) or `Choice(values)`. Keys are a method's
hyperparameter names, or `lr` / `weight_decay` for the SGD settings of the run's recipe
(`bench.core.specs.OptimSpec`), which every method shares (`RECIPE_KEYS`). Nothing here imports
Ray: `bench.tune.space` turns a `Dim` into a Ray Tune domain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

#: search-space keys that set the run's optimiser instead of a method hyperparameter
RECIPE_KEYS = ("lr", "weight_decay")


@dataclass(frozen=True)
class LogUniform:
    """Uniform in log space on [low, high] (both > 0)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high or not math.isfinite(self.high):
            raise ValueError(f"LogUniform needs 0 < low < high < inf, got {self.low}, {self.high}")

    def contains(self, value: Any) -> bool:
        return _number(value) and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high]."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high or not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"Uniform needs finite low < high, got {self.low}, {self.high}")

    def contains(self, value: Any) -> bool:
        return _number(value) and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntUniform:
    """A whole number uniform on {low, …, high}."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not (isinstance(self.low, int) and isinstance(self.high, int) and self.low < self.high):
            raise ValueError(f"IntUniform needs integers low < high, got {self.low}, {self.high}")

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def __str__(self) -> str:
        return f"integer in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Choice:
    """One of a few values, each equally likely."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.values) < 2:
            raise ValueError(f"Choice needs at least two values, got {self.values!r}")

    def contains(self, value: Any) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(map(str, self.values))


Dim = Union[LogUniform, Uniform, IntUniform, Choice]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
