"""The optimiser and learning-rate schedule settings of a run, shared by methods and the engine."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimSpec:
    """SGD settings of the classifier."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False


@dataclass(frozen=True)
class ScheduleSpec:
    """Learning-rate schedule: `cosine` (per epoch, to 0), `multistep`, `constant`, or
    `cosine-restarts` (SGDR per iteration: a first cycle of `cycle_epochs`, each next cycle
    `cycle_mult` times longer and peaking `cycle_decay` times lower), optionally preceded by a
    linear warm-up from `warmup_start`·lr (mmcv's rule, per iteration)."""

    name: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    warmup_start: float = 0.1
    cycle_epochs: float = 1.0
    cycle_mult: float = 2.0
    cycle_decay: float = 0.9
