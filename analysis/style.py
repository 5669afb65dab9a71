"""How methods are named, ordered and coloured in every table and plot."""
from __future__ import annotations

from collections.abc import Iterable

#: listing order (the registry's `methods.ORDER`; a test keeps the two equal). Others follow by name.
METHOD_ORDER = ("ce", "balanced_softmax", "dal", "dividemix", "dividemix_bs", "mwnet", "gdw", "famus", "fsr",
                "dynamic_loss", "dynamic_loss_bs", "dynamic_loss_la")

DISPLAY_NAMES = {
    "ce": "CE",
    "balanced_softmax": "Balanced Softmax",
    "dal": "DAL",
    "dividemix": "DivideMix",
    "dividemix_bs": "DivideMix + BS",
    "mwnet": "MW-Net",
    "gdw": "GDW",
    "famus": "FaMUS",
    "fsr": "FSR",
    "dynamic_loss": "Dynamic Loss",
    "dynamic_loss_bs": "Dynamic Loss + BS",
    "dynamic_loss_la": "Dynamic Loss + LA",
}


def method_order(methods: Iterable[str]) -> list[str]:
    """`methods` sorted in the listing order, unknown names last, by name."""
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(set(methods), key=lambda m: (rank.get(m, len(rank)), m))


def display_name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


#: one fixed, distinct colour per method (families share a hue: DivideMix orange, the meta-learning
#: re-weighters green/blue, Dynamic Loss reds); methods not listed get colours from "husl".
METHOD_COLOURS = {
    "ce": "#4d4d4d",
    "balanced_softmax": "#1f77b4",
    "dal": "#8c564b",
    "dividemix": "#ff7f0e",
    "dividemix_bs": "#b8860b",
    "mwnet": "#2ca02c",
    "gdw": "#17becf",
    "famus": "#9467bd",
    "fsr": "#e377c2",
    "dynamic_loss": "#d62728",
    "dynamic_loss_bs": "#7f0000",
    "dynamic_loss_la": "#000080",
}


def method_palette(methods: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """One fixed colour per method: a method keeps its colour whatever else is plotted."""
    import seaborn as sns
    from matplotlib.colors import to_rgb

    ordered = method_order(methods)
    extra = [m for m in ordered if m not in METHOD_COLOURS]
    spare = dict(zip(extra, sns.color_palette("husl", max(len(extra), 1))))
    return {m: to_rgb(METHOD_COLOURS[m]) if m in METHOD_COLOURS else spare[m] for m in ordered}
