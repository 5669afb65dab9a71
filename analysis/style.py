"""How methods are named, ordered and coloured in every table and plot: read from the method
registry (each method declares `display_name`, `colour`, `order` and `family` on its class).
Methods a results folder holds but the registry no longer knows keep their own name, come
last, and get colours from a spare palette."""
from __future__ import annotations

from collections.abc import Iterable

from methods import METHODS


def method_order(methods: Iterable[str]) -> list[str]:
    """`methods` sorted in the registry's listing order, unknown names last, by name."""
    rank = {m: i for i, m in enumerate(METHODS.names())}
    return sorted(set(methods), key=lambda m: (rank.get(m, len(rank)), m))


def display_name(method: str) -> str:
    return METHODS.display_name(method)


def method_family(method: str) -> str:
    """The group a method belongs to (plots mark families alike); '' for unknown methods."""
    return METHODS.get(method).family if method in METHODS else ""


#: one marker per method family, in the order families first appear in the listing
FAMILY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def method_markers(methods: Iterable[str]) -> dict[str, str]:
    """A marker per method, shared by the methods of one family (plots group families by shape)."""
    families = list(dict.fromkeys(METHODS.get(m).family for m in METHODS.names()))
    rank = {f: FAMILY_MARKERS[i % len(FAMILY_MARKERS)] for i, f in enumerate(families)}
    return {m: rank.get(method_family(m), "o") for m in method_order(methods)}


def baseline_method() -> str:
    """The method others are compared against by default (statistics, heatmaps, cost ratios)."""
    return METHODS.baseline()


def method_palette(methods: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """One fixed colour per method: a method keeps its colour whatever else is plotted."""
    import seaborn as sns
    from matplotlib.colors import to_rgb

    ordered = method_order(methods)
    declared = {m: METHODS.get(m).colour for m in ordered if m in METHODS and METHODS.get(m).colour}
    extra = [m for m in ordered if m not in declared]
    spare = dict(zip(extra, sns.color_palette("husl", max(len(extra), 1))))
    return {m: to_rgb(declared[m]) if m in declared else spare[m] for m in ordered}
