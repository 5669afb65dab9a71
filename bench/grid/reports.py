"""The README's benchmark reports, as data: which preset a report runs, which table layout it prints,
where its run records are kept, and the effects the papers lead a reader to expect, each decided by a test
(`analysis.report`). The paper modules in `bench.grid.papers` declare them beside their presets.
"""
from __future__ import annotations

from dataclasses import dataclass

from bench.core.registry import Registry


@dataclass(frozen=True)
class Effect:
    """An expected effect: `method` scores above `versus` (Last) in the report's cells that match
    `imbalances` and `noise_rates` (empty: all), as `source` claims."""

    method: str
    versus: str
    source: str
    imbalances: tuple[float, ...] = ()
    noise_rates: tuple[float, ...] = ()

    def covers(self, imbalance: float, noise_rate: float) -> bool:
        """Whether the effect is claimed for a cell with this imbalance and noise rate."""
        return ((not self.imbalances or imbalance in self.imbalances)
                and (not self.noise_rates or noise_rate in self.noise_rates))


@dataclass(frozen=True)
class Report:
    """A benchmark report: `preset`'s runs, printed with `layout`, written as the README section
    `heading`; its run records (runs.csv, epochs.csv, report.json) live in `records`, its figures
    in `figures` (paths relative to the repository root)."""

    name: str
    heading: str
    preset: str
    layout: str
    records: str
    figures: str
    effects: tuple[Effect, ...]
    #: one paragraph on the protocol: what was run and why it is sized so
    protocol: str


REPORTS: Registry[Report] = Registry("report")


def add_report(report: Report) -> None:
    """Register `report` under its own name."""
    REPORTS.add(report.name, report, report.heading)
