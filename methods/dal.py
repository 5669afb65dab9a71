"""DAL, Dynamics-Aware Loss (Li et al., arXiv 2303.11562; methods.md §9).

GCE whose q rises linearly per epoch from q_s to q_e, plus an entropy (soft bootstrapping)
term that switches on once q crosses 1 and ramps linearly to weight 1 at the last epoch,
normalised by q·ln C. Both change only at epoch boundaries, as in the official code.
A schedule whose q never passes 1 (q_e ≤ 1) has no bootstrapping term; one that inverts
(q_e < q_s) is refused when the run is planned (`DAL.check_run`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from bench.core.errors import UsageError
from bench.core.hparams import Range, Rule
from bench.core.search import Dim, LogUniform, Uniform
from methods.base import Method
from methods.registry import METHODS


def dal_schedule(epoch: int, epochs: int, q_start: float, q_end: float) -> tuple[float, float]:
    """(q, λ) for a 0-based epoch: q linear from q_start (epoch 0) toward q_end (epoch E);
    λ = 0 until the epoch t0 where q reaches 1, then (e − t0)/(E − t0).

    Unless q rises past 1 within the run (q_end > 1 and q_end > q_start), λ = 0 throughout:
    the paper's definition. The code's `cifar.py` applies max(0, (e − t0)/(E − t0)) for any
    q_e, which is positive (and grows) when t0 > E, i.e. q_e < 1, and divides by zero at q_e = 1."""
    q = q_start + (q_end - q_start) * epoch / epochs
    if q_end <= q_start or q_end <= 1.0:
        return q, 0.0
    t0 = (1.0 - q_start) * epochs / (q_end - q_start)  # < epochs here
    return q, max(0.0, (epoch - t0) / (epochs - t0))


def dal_loss(logits: torch.Tensor, y: torch.Tensor, q: float, lam: float) -> torch.Tensor:
    """Per-sample GCE_q + λ·H(p)/(q·ln C), with the official clamps (p_y ≥ 1e-6, log(p + 1e-6))."""
    p = logits.float().softmax(dim=1)
    p_y = p.gather(1, y[:, None]).squeeze(1).clamp_min(1e-6)
    gce = (1.0 - p_y.pow(q)) / q
    if lam == 0.0:
        return gce
    entropy = -(p * (p + 1e-6).log()).sum(dim=1)
    return gce + lam * entropy / (q * math.log(logits.shape[1]))


@METHODS.register("dal", "GCE with q rising per epoch + entropy bootstrapping (DAL)")
class DAL(Method):
    display_name = "DAL"
    colour = "#8c564b"
    order = 20
    family = "robust loss"
    defaults: ClassVar[dict[str, Any]] = {"q_start": 0.6, "q_end": 1.5}
    hparam_rules: ClassVar[Mapping[str, Rule]] = {"q_start": Range(gt=0), "q_end": Range(gt=0)}
    # q_start's range ends below q_end's, so every point is a rising schedule (check_run refuses a falling one)
    search_space: ClassVar[Mapping[str, Dim]] = {
        # the official code starts q at 0.6 on CIFAR and 0.4 on WebVision (methods.md §9.2); the paper studies q_s
        "q_start": Uniform(0.4, 0.8),
        # 1.5 in both official scripts (methods.md §9.2); kept above 1 so the bootstrapping term always switches on
        "q_end": Uniform(1.2, 1.8),
        # DAL's own CIFAR recipe is lr 0.01 (methods.md §9.2), the low end; the other CIFAR recipes reach 0.1
        "lr": LogUniform(0.01, 0.2),
        # DAL's CIFAR recipe: 1e-4 (methods.md §9.2); the other CIFAR recipes: 5e-4
        "weight_decay": LogUniform(1e-4, 1e-3),
    }

    @classmethod
    def check_run(cls, hparams: Mapping[str, Any], epochs: int) -> None:
        """Also refuse an inverted schedule (q falling over the run), which DAL never describes."""
        super().check_run(hparams, epochs)
        if hparams["q_end"] < hparams["q_start"]:
            raise UsageError(f"method 'dal': q_end={hparams['q_end']} < q_start={hparams['q_start']}, so q would fall "
                             f"over the run instead of rising; use --hp q_end=X with X >= q_start (default 1.5)")

    def loss(self, logits: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        q, lam = dal_schedule(epoch, self.ctx.epochs, self.hp["q_start"], self.hp["q_end"])
        return dal_loss(logits, y, q, lam)
