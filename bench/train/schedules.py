"""Learning-rate schedules, evaluated at (epoch, fraction of the epoch done)."""
from __future__ import annotations

import math

from bench.core.errors import unknown
from bench.core.specs import ScheduleSpec

SCHEDULES = ("cosine", "multistep", "constant", "cosine-restarts")


def per_iteration(spec: ScheduleSpec) -> bool:
    """Whether the schedule changes within an epoch (else only warm-up does)."""
    return spec.name == "cosine-restarts"


def _cosine_restarts(spec: ScheduleSpec, t: float) -> float:
    """SGDR factor at `t` epochs: position in the current cycle, and that cycle's peak."""
    length, peak = spec.cycle_epochs, 1.0
    while t >= length:
        t -= length
        length *= spec.cycle_mult
        peak *= spec.cycle_decay
    return peak * 0.5 * (1.0 + math.cos(math.pi * t / length))


def lr_at(spec: ScheduleSpec, base_lr: float, epoch: int, epochs: int, frac: float = 0.0) -> float:
    """The learning rate for iteration `frac` (in [0, 1)) of `epoch` (0-based).

    The main schedule changes once per epoch, as in the official code of Dynamic Loss, GDW and
    DAL (cosine: lr·(1+cos(π·e/E))/2), except `cosine-restarts`, which follows FSR's
    per-iteration `cosine_decay_restarts` (methods.md §8.2). A linear warm-up multiplies it by
    `start + (1 − start)·progress` per iteration during the first `warmup_epochs` (mmcv's rule).
    """
    if spec.name == "cosine":
        lr = base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    elif spec.name == "multistep":
        lr = base_lr * spec.gamma ** sum(epoch >= m for m in spec.milestones)
    elif spec.name == "constant":
        lr = base_lr
    elif spec.name == "cosine-restarts":
        lr = base_lr * _cosine_restarts(spec, epoch + frac)
    else:
        raise unknown("schedule", spec.name, SCHEDULES)
    if epoch < spec.warmup_epochs:
        progress = (epoch + frac) / spec.warmup_epochs
        lr *= spec.warmup_start + (1.0 - spec.warmup_start) * progress
    return lr
