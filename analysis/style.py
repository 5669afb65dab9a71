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


def method_palette(methods: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """One fixed colour per method: a method keeps its colour whatever else is plotted."""
    import seaborn as sns

    known = list(METHOD_ORDER)
    colours = sns.color_palette("tab20", 20)
    extra = [m for m in method_order(methods) if m not in known]
    return {m: colours[(known + extra).index(m) % len(colours)] for m in method_order(methods)}
