"""How methods are named, ordered and coloured in every table and plot: read from the method
registry (each method declares `display_name`, `colour`, `order` and `family` on its class).
Methods a results folder holds but the registry no longer knows keep their own name, come
last, and get colours from a spare palette.

Datasets, noise models and protocol parameters get readable names here too: datasets from the
titles the paper layouts print (`bench.grid.layout.DATASET_TITLES`), noise models from
`NOISE_TITLES` (the noise registry declares no display name; a test keeps the two in step), and
the parameters as the tables' headers write them: ρ for the imbalance ratio, λ for the noise rate.
"""
from __future__ import annotations

from collections.abc import Iterable

from bench.grid.layout import DATASET_TITLES, Cell
from methods import METHODS

#: protocol parameters as the tables' headers print them
RHO = "ρ"  # imbalance ratio (largest / smallest class)
LAMBDA = "λ"  # noise rate

#: readable names of the noise models of `noisytail_datasets.noise.NOISE_MODELS` ("none" = clean)
NOISE_TITLES = {
    "none": "clean", "sym": "symmetric", "sym-excl": "symmetric (excl.)", "asym": "asymmetric",
    "flip": "pair flip", "lt-prior": "long-tail prior",
    "human-aggre": "CIFAR-10N aggregate", "human-rand1": "CIFAR-10N random 1", "human-rand2": "CIFAR-10N random 2",
    "human-rand3": "CIFAR-10N random 3", "human-worst": "CIFAR-10N worst", "human-noisy": "CIFAR-100N noisy",
}


#: titles of the registered datasets that no paper layout prints
EXTRA_DATASET_TITLES = {"random-cifar": "random CIFAR-shaped data"}


def dataset_title(dataset: str) -> str:
    """'cifar10' -> 'CIFAR-10' (the name itself for a dataset nothing titles)."""
    return DATASET_TITLES.get(dataset) or EXTRA_DATASET_TITLES.get(dataset, dataset)


def noise_title(noise: str) -> str:
    """'lt-prior' -> 'long-tail prior', 'none' -> 'clean' (the name itself for an unknown model)."""
    return NOISE_TITLES.get(noise, noise)


def setting_title(noise: str, noise_rate: float) -> str:
    """The noise part of a cell: 'clean' or e.g. 'long-tail prior λ=0.3'."""
    return noise_title("none") if noise == "none" else f"{noise_title(noise)} {LAMBDA}={noise_rate:g}"


def cell_title(cell: Cell, with_dataset: bool = True) -> str:
    """A cell for a figure: e.g. 'CIFAR-10, ρ=100, long-tail prior λ=0.3' or 'CIFAR-10, ρ=10, clean'
    (without the dataset where the figure names it once)."""
    parts = [f"{RHO}={cell.imbalance:g}", setting_title(cell.noise, cell.noise_rate)]
    return ", ".join([dataset_title(cell.dataset), *parts] if with_dataset else parts)


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
