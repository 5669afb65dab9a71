"""The papers' published numbers (`results/reference/published_results.csv`) and their known defects.

A published number is looked up by (paper, table, printed method name, cell, metric, measure).
The measure (the CSV's `measure` column, `bench.grid.layout.MEASURES`) tells apart the several
numbers a table prints for one cell, e.g. WebVision top-1/top-5 and ImageNet top-1/top-5 of
mini-WebVision; an empty measure and "top1" are the same (top-1 on the main test set). A key
may hold NaN where the paper averages over settings (Dynamic Loss Table 9: no imbalance or rate);
NaN matches NaN. The printed names keep the papers' spellings ("Cross Entopy", "DivdeMix"); each table layout maps
our registry names to them. Where a table prints one method for two backbones (FSR's "FSR"
on WRN-28-10 and "FSR-R32" on ResNet-32), the row of the backbone our runs used is chosen.
Each paper module of `bench.grid.papers` lists its table's known defects (what
`specs/reference_results.md` marks ⚠); `defects_for` finds those that apply to a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from bench.core.errors import UsageError
from bench.grid.layout import PAPERS, Defect

REFERENCE_CSV = Path(__file__).resolve().parent.parent / "results" / "reference" / "published_results.csv"

#: our metric -> the published metric names that can stand for it, in order of preference.
#: "acc" is a number whose paper does not say whether it is the last or the best epoch.
COMPARABLE_METRICS = {"last": ("last", "acc"), "best": ("best", "acc"), "last5": ("last5_mean",),
                      "selected": ()}  # no paper selects on a validation split


def known_defects() -> list[tuple[str, Defect]]:
    """(paper key, defect) of every registered paper (declared in `bench.grid.papers`)."""
    return [(key, d) for key in PAPERS for d in PAPERS.get(key).defects]


@lru_cache(maxsize=1)
def published(path: Path = REFERENCE_CSV) -> pd.DataFrame:
    """The published numbers, one row each (see results/reference/README.md for the columns)."""
    if not path.exists():
        raise UsageError(f"reference numbers '{path}' are missing; restore results/reference/ from the repository")
    return pd.read_csv(path, dtype={"method": str, "note": str})


@dataclass(frozen=True)
class Published:
    """One published number found for our (method, cell, metric)."""

    value: float
    std: float
    name: str  # the method as printed
    metric: str  # the published metric it came from
    backbone: str
    flags: tuple[str, ...]  # ⚠ notes that apply
    measure: str = ""  # what it measures ("" = top-1 on the main test set)


def _same_number(column: pd.Series, value: float) -> pd.Series:
    """Rows of a numeric key column equal to `value` (NaN matches NaN)."""
    column = pd.to_numeric(column, errors="coerce")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return column.isna()
    return (column - float(value)).abs() < 1e-9


def _measures(ref: pd.DataFrame) -> pd.Series:
    """The measure of each published row, "" for top-1 on the main test set (empty or "top1")."""
    if "measure" not in ref:
        return pd.Series("", index=ref.index)
    text = ref["measure"].fillna("").astype(str).str.strip()
    return text.where(text != "top1", "")


def lookup(paper: str, table: int, names: tuple[str, ...], cell_key: tuple, metric: str,
           backbone: str | None = None, measure: str = "") -> Published | None:
    """The published number of the first of `names` printed in (paper, table) for the cell,
    metric and measure.

    `cell_key` is (dataset, imbalance, published noise name, noise rate); `measure` "" or "top1"
    is top-1 on the main test set. Returns None when the table has no such number.
    """
    dataset, imbalance, noise, rate = cell_key
    ref = published()
    wanted = "" if measure in ("", "top1") else measure
    rows = ref[(ref["paper"] == paper) & (ref["table"] == table) & (ref["dataset"] == dataset)
               & _same_number(ref["imbalance"], imbalance) & (ref["noise"] == noise)
               & _same_number(ref["noise_rate"], rate) & (_measures(ref) == wanted)]
    for ref_metric in COMPARABLE_METRICS[metric]:
        hits = rows[(rows["metric"] == ref_metric) & rows["method"].isin(names)]
        if backbone is not None and (hits["backbone"] == backbone).any():
            hits = hits[hits["backbone"] == backbone]  # e.g. "FSR-R32" when we ran ResNet-32
        for name in names:
            if (hits["method"] == name).sum() == 1:
                row = hits[hits["method"] == name].iloc[0]
                flags = defects_for(paper, table, name, metric, cell_key=cell_key)
                if ref_metric == "acc":
                    flags += (f"{paper} Table {table} does not say whether it reports the last or the best epoch",)
                return Published(float(row["value"]), _float(row["std"]), name, ref_metric, str(row["backbone"]), flags,
                                 wanted)
    return None


def published_time_ms(paper: str, table: int, names: tuple[str, ...]) -> Published | None:
    """A published per-iteration time in ms (FaMUS Table 1's 'Time' column), if printed."""
    ref = published()
    rows = ref[(ref["paper"] == paper) & (ref["table"] == table) & (ref["metric"].str.startswith("ms_per_iter"))]
    for name in names:
        hits = rows[rows["method"] == name]
        if len(hits):
            row = hits.iloc[0]
            return Published(float(row["value"]), math.nan, name, str(row["metric"]), str(row["backbone"]), ())
    return None


def defects_for(paper: str, table: int, name: str | None, metric: str | None, avg: bool = False,
                cell_key: tuple | None = None) -> tuple[str, ...]:
    """The ⚠ notes that apply to a published number of `cell_key` (or to the Avg when `avg`)."""
    out = []
    for key, d in known_defects():
        if key != paper or d.table != table or d.avg_only != avg:
            continue
        if d.method is not None and d.method != name:
            continue
        if d.metric is not None and d.metric != metric:
            continue
        if d.cells is not None and not any(_same_cell(c, cell_key) for c in d.cells):
            continue
        out.append(d.note)
    return tuple(out)


def table_methods(paper: str, table: int) -> list[str]:
    """Every method printed in (paper, table), in the paper's row order."""
    ref = published()
    rows = ref[(ref["paper"] == paper) & (ref["table"] == table)]
    return list(dict.fromkeys(rows["method"]))


def _same_cell(a: tuple, b: tuple | None) -> bool:
    if b is None or a[0] != b[0] or a[2] != b[2]:
        return False
    return all(_same_value(x, y) for x, y in ((a[1], b[1]), (a[3], b[3])))


def _same_value(a: object, b: object) -> bool:
    """Two key numbers alike (NaN alike NaN)."""
    a, b = _float(a), _float(b)
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
