"""Finding a table layout: `grid`, built from the results themselves (every cell present,
grouped by dataset and ρ), or a paper's table, declared with its preset in `bench.grid.papers`
(`bench.grid.layout` holds the data types). `analysis/tables.py` renders any of them.
"""
from __future__ import annotations

from analysis.results import Results
from bench.core.errors import unknown
from bench.grid.layout import DATASET_TITLES, LAYOUTS, PAPERS, Column, Layout

__all__ = ["LAYOUTS", "Column", "Layout", "default_layout", "get_layout", "grid_layout", "layout_names",
           "paper_title"]


def get_layout(name: str, results: Results | None = None) -> Layout:
    """A registered layout, or `grid` built from `results`."""
    if name == "grid":
        if results is None:
            raise ValueError("the grid layout is built from results")
        return grid_layout(results)
    if name not in LAYOUTS:
        raise unknown("table layout", name, layout_names())
    return LAYOUTS.get(name)


def paper_title(key: str) -> str:
    """The title of paper `key` (the key itself for an unknown paper)."""
    return PAPERS.get(key).title if key in PAPERS else key


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
