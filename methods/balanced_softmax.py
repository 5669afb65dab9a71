"""Balanced Softmax (Ren et al. 2020; methods.md §3).

Training adds log n_j to logit j, where n_j counts the *observed noisy* labels of class j
(the true labels are unknown to a method; §3.1 notes this is the natural choice under noise).
Prediction uses the raw logits.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from bench.core.search import Dim, LogUniform
from methods.base import Method, MethodContext
from methods.registry import METHODS


def balanced_softmax_loss(logits: torch.Tensor, y: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """Per-sample CE(z + log n, y)."""
    return F.cross_entropy(logits + log_prior, y, reduction="none")


@METHODS.register("balanced_softmax", "cross-entropy on logits + log(noisy class counts)")
class BalancedSoftmax(Method):
    display_name = "Balanced Softmax"
    colour = "#1f77b4"
    order = 10
    family = "long-tail loss"
    # no hyperparameter of its own: only the recipe, shared with CE
    search_space: ClassVar[Mapping[str, Dim]] = {
        # BALMS' CIFAR-LT config peaks at 0.1 after a ramp from 0.05 (methods.md §3.2); DL's runs of it use 0.1
        "lr": LogUniform(0.01, 0.2),
        # BALMS and DL both train it with 5e-4 (methods.md §3.2, §10.4)
        "weight_decay": LogUniform(1e-4, 1e-3),
    }

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        counts = torch.tensor(ctx.noisy_counts, dtype=torch.float32, device=ctx.device)
        # A class with no observed label would get log 0 = -inf; count it once instead.
        self.log_prior = counts.clamp_min(1.0).log()

    def loss(self, logits: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        return balanced_softmax_loss(logits, y, self.log_prior)
