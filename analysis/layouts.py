"""Table layouts: which cells become which columns, which metrics the rows show, and how our
methods are spelled in the paper a layout reproduces. Layouts are data; `analysis/tables.py`
renders any of them.

`grid` is built from the results themselves (every cell present, grouped by dataset and ρ);
the others mirror a paper's table shape (columns in the paper's order).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from analysis.results import Cell, Results
from bench.core.errors import unknown
from bench.core.registry import Registry

PAPER_TITLES = {"dynamic_loss": "Dynamic Loss", "gdw": "GDW", "famus": "FaMUS", "fsr": "FSR"}
DATASET_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion-mnist": "Fashion-MNIST", "digits": "digits"}


@dataclass(frozen=True)
class Column:
    """One table column: a cell of our grid, its headers, and its name in the published table."""

    cell: Cell
    group: str  # top header, shared by neighbouring columns (e.g. "CIFAR-10 ρ=10")
    label: str  # own header (e.g. "λ=0.1")
    ref_noise: str | None = None  # the published table's noise name, when it differs from ours

    def ref_key(self) -> tuple:
        return (self.cell.dataset, self.cell.imbalance, self.ref_noise or self.cell.noise, self.cell.noise_rate)


@dataclass(frozen=True)
class Layout:
    """How to lay out one table (see the module docstring)."""

    name: str
    title: str
    columns: tuple[Column, ...]
    metrics: tuple[str, ...] = ("last",)  # sub-rows per method, unless --metric picks one
    avg: str | None = None  # None, "all" (one Avg column) or "group" (an Avg per dataset)
    paper: str | None = None
    table: int | None = None
    paper_names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # registry name -> printed names
    preset: str | None = None  # the preset that runs this table's cells
    time_column: bool = False  # add median ms per iteration (FaMUS Table 1)
    decimals: int = 2


LAYOUTS: Registry[Layout] = Registry("table layout")


def get_layout(name: str, results: Results | None = None) -> Layout:
    """A registered layout, or `grid` built from `results`."""
    if name == "grid":
        if results is None:
            raise ValueError("the grid layout is built from results")
        return grid_layout(results)
    if name not in LAYOUTS:
        raise unknown("table layout", name, layout_names())
    return LAYOUTS.get(name)


def layout_names() -> list[str]:
    return ["grid", *LAYOUTS.names()]


def default_layout(results: Results) -> str:
    """The paper layout whose preset produced these results, else `grid`."""
    presets = set(results.runs.get("preset", []))
    matches = [name for name in LAYOUTS.names() if LAYOUTS.get(name).preset in presets]
    return matches[0] if len(presets) == 1 and len(matches) == 1 else "grid"


def grid_layout(results: Results) -> Layout:
    """Every cell of the results: grouped by dataset and ρ, one column per noise setting."""
    columns = []
    for cell in results.cells():
        group = f"{DATASET_TITLES.get(cell.dataset, cell.dataset)} ρ={cell.imbalance:g}"
        label = "clean" if cell.noise == "none" else f"{cell.noise} {cell.noise_rate:g}"
        columns.append(Column(cell, group, label))
    preset = ", ".join(sorted(set(results.runs["preset"].dropna().astype(str)))) or "results"
    return Layout(name="grid", title=f"{preset}: every method and cell", columns=tuple(columns), avg="all")


# ---------------------------------------------------------------------------- paper layouts


def _cols(dataset: str, imbalances, noise: str, rates, group: str, label: str, ref_noise: str | None = None,
          outer: str = "imbalance") -> tuple[Column, ...]:
    """Columns over imbalances × rates (`outer` says which varies slowest); `group`/`label` are
    format strings over {ds}, {rho}, {mu}, {rate}, {pct}."""
    pairs = ([(r, q) for r in imbalances for q in rates] if outer == "imbalance"
             else [(r, q) for q in rates for r in imbalances])
    out = []
    for rho, rate in pairs:
        values = {"ds": DATASET_TITLES[dataset], "rho": f"{rho:g}", "mu": f"{1 / rho:g}", "rate": f"{rate:g}",
                  "pct": f"{100 * rate:g}%", "rho0": "0" if rho == 1 else f"{rho:g}"}
        cell = Cell(dataset, float(rho), noise if rate > 0 else "none", float(rate))
        out.append(Column(cell, group.format(**values), label.format(**values), ref_noise if rate > 0 else None))
    return tuple(out)


DL_NAMES = {"ce": ("Cross Entopy",), "dividemix": ("DivideMix",), "balanced_softmax": ("Balanced-Softmax",),
            "dividemix_bs": ("DivideMix +Balanced-Softmax",), "famus": ("FaMUS",),
            "dynamic_loss": ("Dynamic Loss (Ours)",)}
GDW_NAMES = {"ce": ("BaseModel",), "mwnet": ("MWNet",), "gdw": ("GDW",)}
FSR_NAMES = {"fsr": ("FSR", "FSR-R32"), "mwnet": ("MWN♯",)}
LAMBDAS = (0.1, 0.2, 0.3, 0.4, 0.5)

for _n, _ds, _preset in ((2, "cifar10", "cifar10-n-lt"), (3, "cifar100", "cifar100-n-lt")):
    LAYOUTS.add(f"dl-table{_n}", Layout(
        name=f"dl-table{_n}", title=f"Dynamic Loss Table {_n}: {DATASET_TITLES[_ds]}-N-LT (lt-prior noise), ResNet-32",
        columns=_cols(_ds, (10, 100), "lt-prior", LAMBDAS, "ρ={rho}", "λ={rate}"),
        metrics=("last", "best"), avg="all", paper="dynamic_loss", table=_n, paper_names=DL_NAMES, preset=_preset,
    ))

LAYOUTS.add("dl-table5", Layout(
    name="dl-table5", title="Dynamic Loss Table 5: balanced CIFAR with synthetic noise, PreAct ResNet-18",
    columns=(_cols("cifar10", (1,), "sym", (0.2, 0.4, 0.6), "{ds}", "sym {pct}")
             + _cols("cifar10", (1,), "asym", (0.2, 0.4), "{ds}", "asym {pct}")
             + _cols("cifar100", (1,), "sym", (0.2, 0.4, 0.6), "{ds}", "sym {pct}")),
    avg="group", paper="dynamic_loss", table=5, preset="dl-table5",
    paper_names={"ce": ("Cross Entopy",), "dividemix": ("DivdeMix",), "dynamic_loss": ("Dynamic Loss (Ours)",)},
))

LAYOUTS.add("dl-table7", Layout(
    name="dl-table7", title="Dynamic Loss Table 7: clean long-tailed CIFAR, ResNet-32",
    columns=sum((_cols(ds, (10, 20, 50, 100), "none", (0.0,), "{ds}", "ρ={rho}") for ds in ("cifar10", "cifar100")), ()),
    avg="group", paper="dynamic_loss", table=7, preset="dl-table7",
    paper_names={"ce": ("Cross entropy",), "balanced_softmax": ("Balanced-Softmax",), "famus": ("FaMUS",),
                 "dynamic_loss": ("Dynamic Loss",), "dynamic_loss_bs": ("Dynamic Loss + Balanced-Softmax",),
                 "dynamic_loss_la": ("Dynamic Loss + Logit Adjustment",)},
))

for _n, _noise, _rates, _what in ((2, "sym", (0.0, 0.4, 0.6), "uniform noise"), (3, "flip", (0.0, 0.2, 0.4), "flip noise")):
    LAYOUTS.add(f"gdw-table{_n}", Layout(
        name=f"gdw-table{_n}", title=f"GDW Table {_n}: CIFAR with {_what}, ResNet-32, mean of the last 5 epochs",
        columns=sum((_cols(ds, (1,), _noise, _rates, "{ds}", "{pct}") for ds in ("cifar10", "cifar100")), ()),
        metrics=("last5",), paper="gdw", table=_n, paper_names=GDW_NAMES, preset=f"gdw-table{_n}",
    ))

LAYOUTS.add("gdw-table4", Layout(
    name="gdw-table4", title="GDW Table 4: long-tailed CIFAR (μ = 1/ρ), ResNet-32, mean of the last 5 epochs",
    columns=sum((_cols(ds, (1, 10, 100), "none", (0.0,), "{ds}", "μ={mu}") for ds in ("cifar10", "cifar100")), ()),
    metrics=("last5",), paper="gdw", table=4, paper_names=GDW_NAMES, preset="gdw-table4",
))

LAYOUTS.add("gdw-table8", Layout(
    name="gdw-table8", title="GDW Table 8: uniform noise then long tail, ResNet-32, mean of the last 5 epochs",
    columns=sum((_cols(ds, (10, 100), "sym", (0.4, 0.6), "{ds}", "μ={mu} {pct}", ref_noise="sym-then-lt")
                 for ds in ("cifar10", "cifar100")), ()),
    metrics=("last5",), paper="gdw", table=8, paper_names={"mwnet": ("MW-Net",), "gdw": ("GDW",)}, preset="gdw-table8",
))

LAYOUTS.add("famus-table1", Layout(
    name="famus-table1", title="FaMUS Table 1: MW-Net with and without FaMUS, uniform noise, WRN-28-10, best epoch",
    columns=sum((_cols(ds, (1,), "sym", (0.2, 0.4, 0.6), "{ds}", "{pct}") for ds in ("cifar10", "cifar100")), ()),
    metrics=("best",), paper="famus", table=1, time_column=True, preset="famus-table1",
    paper_names={"mwnet": ("MW-Net",), "famus": ("MW-Net + FaMUS",)},
))

LAYOUTS.add("famus-table8", Layout(
    name="famus-table8", title="FaMUS Table 8: clean long-tailed CIFAR, ResNet-32",
    columns=sum((_cols(ds, (100, 50, 20, 10), "none", (0.0,), "{ds}", "ρ={rho}") for ds in ("cifar10", "cifar100")), ()),
    paper="famus", table=8, preset="famus-table8",
    paper_names={"ce": ("CE loss",), "mwnet": ("MW-Net with CE loss",), "famus": ("MW-Net with CE loss + FaMUS",)},
))

for _n, _ds, _noise, _rates, _what in ((1, "cifar10", "sym", (0.0, 0.2, 0.4, 0.8), "uniform noise"),
                                       (2, "cifar100", "sym", (0.0, 0.2, 0.4, 0.8), "uniform noise"),
                                       (3, "cifar10", "asym", (0.2, 0.4), "asymmetric noise")):
    LAYOUTS.add(f"fsr-table{_n}", Layout(
        name=f"fsr-table{_n}", title=f"FSR Table {_n}: {DATASET_TITLES[_ds]} with {_what}, last iteration",
        columns=_cols(_ds, (1,), _noise, _rates, "{ds}", "{rate}"), paper="fsr", table=_n,
        paper_names=FSR_NAMES if _n < 3 else {"fsr": FSR_NAMES["fsr"]},
        preset=f"fsr-table{_n}",
    ))

LAYOUTS.add("fsr-table6", Layout(
    name="fsr-table6", title="FSR Table 6: clean long-tailed CIFAR, ResNet-32 (FSR with deferred re-weighting)",
    columns=sum((_cols(ds, (200, 50, 10), "none", (0.0,), "{ds}", "ρ={rho}") for ds in ("cifar10", "cifar100")), ()),
    paper="fsr", table=6, preset="fsr-table6",
    paper_names={"ce": ("SoftMax",), "mwnet": ("MWN♯",), "fsr": ("FSR-DF", "FSR")},
))

LAYOUTS.add("fsr-table7", Layout(
    name="fsr-table7", title="FSR Table 7: CIFAR-10, long tail then uniform noise (ρ=0: balanced), last iteration",
    columns=_cols("cifar10", (1, 10, 50, 200), "sym", (0.2, 0.4), "r={rate}", "ρ={rho0}", ref_noise="lt-then-sym",
                  outer="rate"),
    paper="fsr", table=7, preset="fsr-table7", paper_names={"fsr": ("FSR (Ours)",)},
))
