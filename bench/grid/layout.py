"""What a published table looks like, as data: its columns (cells of our grids), the metrics its
rows show, how it prints our methods, and the known defects of its numbers.

The paper modules in `bench.grid.papers` declare their tables here (`LAYOUTS`, `PAPERS`) beside
the presets that run them; `analysis.tables` renders any layout.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.core.registry import Registry

DATASET_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion-mnist": "Fashion-MNIST", "digits": "digits",
                  "animal10n": "Animal-10N", "clothing1m": "Clothing1M", "mini-webvision": "mini-WebVision",
                  "imagenet-lt": "ImageNet-LT", "places-lt": "Places-LT",
                  **{f"red-mini-imagenet-{pct}": f"Red Mini-ImageNet {pct}%"
                     for pct in (0, 5, 10, 15, 20, 30, 40, 50, 60, 80)}}

#: what a column measures (the `measure` column of the published numbers) -> the column of the
#: results' epochs table that holds it. "" (the default) and "top1" are the top-1 accuracy on the
#: dataset's main test set; "top5" its top-5 accuracy; "imagenet_top1"/"imagenet_top5" the extra
#: ImageNet test set of mini-WebVision; "many"/"medium"/"few" the mean per-class accuracy of the
#: many-, medium- and few-shot classes (ImageNet-LT, Places-LT).
MEASURES = {"": "test_acc", "top1": "test_acc", "top5": "test_top5", "imagenet_top1": "imagenet_acc",
            "imagenet_top5": "imagenet_top5", "many": "many_acc", "medium": "medium_acc", "few": "few_acc"}


@dataclass(frozen=True)
class Cell:
    """One data protocol of a grid: (dataset, imbalance ρ, noise model, noise rate); a clean cell
    has noise "none"."""

    dataset: str
    imbalance: float
    noise: str
    noise_rate: float

    def spec(self) -> str:
        """The command-line form, e.g. 'cifar10:100:lt-prior:0.3' or 'cifar10:10:clean'."""
        tail = "clean" if self.noise == "none" else f"{self.noise}:{self.noise_rate:g}"
        return f"{self.dataset}:{self.imbalance:g}:{tail}"

    def label(self) -> str:
        """Short human label, e.g. 'cifar10 ρ=100 lt-prior 0.3' or 'cifar10 ρ=10 clean'."""
        noise = "clean" if self.noise == "none" else f"{self.noise} {self.noise_rate:g}"
        return f"{self.dataset} ρ={self.imbalance:g} {noise}"


@dataclass(frozen=True)
class Column:
    """One table column: a cell of our grid, its headers, and its name in the published table.

    `measure` (a key of `MEASURES`) says what the column shows: top-1 on the main test set by
    default, else e.g. top-5 or the ImageNet test set of mini-WebVision; our numbers and the
    published ones are both taken for that measure. `backbone` restricts the column to the runs
    of one backbone (a table whose columns are backbones, Dynamic Loss Table 8); "" = any.
    """

    cell: Cell
    group: str  # top header, shared by neighbouring columns (e.g. "CIFAR-10 ρ=10")
    label: str  # own header (e.g. "λ=0.1")
    ref_noise: str | None = None  # the published table's noise name, when it differs from ours
    measure: str = ""
    backbone: str = ""

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure '{self.measure}'; choose one of: {', '.join(m for m in MEASURES if m)}")

    def ref_key(self) -> tuple:
        return (self.cell.dataset, self.cell.imbalance, self.ref_noise or self.cell.noise, self.cell.noise_rate)


@dataclass(frozen=True)
class Layout:
    """How to lay out one table: its columns, the metric sub-rows per method, the Avg column."""

    name: str
    title: str
    columns: tuple[Column, ...]
    metrics: tuple[str, ...] = ("last",)  # sub-rows per method, unless --metric picks one
    avg: str | None = None  # None, "all" (one Avg column) or "group" (an Avg per dataset)
    paper: str | None = None  # key of the paper in PAPERS
    table: int | None = None
    paper_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # registry name -> printed names
    preset: str | None = None  # the preset that runs this table's cells
    time_column: bool = False  # add median ms per iteration (FaMUS Table 1)
    decimals: int = 2
    #: rows whose paper prints only their average over this layout's cells, in another table
    #: (Dynamic Loss Table 9); needs avg="all"
    average_rows: AverageRows | None = None

    def __post_init__(self) -> None:
        if self.average_rows is not None and self.avg != "all":
            raise ValueError(f"layout '{self.name}': average_rows needs avg='all'")


@dataclass(frozen=True)
class AverageRows:
    """Rows (our methods or ablation variants) whose published number is one average over a
    layout's cells, printed in another table of the same paper: Dynamic Loss Table 9 prints each
    ablation as its mean over Table 2's ten cells. Their paper row shows that number in the Avg
    column and nothing in the cells; ours is the mean of our cells as for any row."""

    table: int
    #: the published key (dataset, imbalance, noise, rate) of the averages; NaN where they span
    #: several values (Table 9: imbalance and rate)
    key: tuple
    names: dict[str, tuple[str, ...]]  # our method or variant -> its printed names in `table`


@dataclass(frozen=True)
class Defect:
    """A known problem of a published table, shown as a ⚠ footnote where it applies."""

    table: int
    method: str | None  # printed name; None: the whole table
    note: str
    metric: str | None = None
    avg_only: bool = False  # concerns the printed Avg column, not the cells
    cells: tuple[tuple, ...] | None = None  # (dataset, imbalance, noise, rate) it concerns; None: all


@dataclass(frozen=True)
class Paper:
    """A paper whose tables we regenerate: its key in the published numbers, title and defects."""

    key: str
    title: str
    defects: tuple[Defect, ...] = ()


LAYOUTS: Registry[Layout] = Registry("table layout")
PAPERS: Registry[Paper] = Registry("paper")


def columns(dataset: str, imbalances: Sequence[float], noise: str, rates: Sequence[float], group: str, label: str,
            ref_noise: str | None = None, outer: str = "imbalance") -> tuple[Column, ...]:
    """Columns over imbalances × rates (`outer` says which varies slowest); `group` and `label`
    are format strings over {ds}, {rho}, {mu}, {rate}, {pct}, {rho0}. A rate of 0 is a clean cell."""
    pairs = ([(r, q) for r in imbalances for q in rates] if outer == "imbalance"
             else [(r, q) for q in rates for r in imbalances])
    out = []
    for rho, rate in pairs:
        values = {"ds": DATASET_TITLES[dataset], "rho": f"{rho:g}", "mu": f"{1 / rho:g}", "rate": f"{rate:g}",
                  "pct": f"{100 * rate:g}%", "rho0": "0" if rho == 1 else f"{rho:g}"}
        cell = Cell(dataset, float(rho), noise if rate > 0 else "none", float(rate))
        out.append(Column(cell, group.format(**values), label.format(**values), ref_noise if rate > 0 else None))
    return tuple(out)


def add_layout(layout: Layout) -> None:
    """Register `layout` under its own name."""
    LAYOUTS.add(layout.name, layout)
