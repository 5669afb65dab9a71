"""Plain cross-entropy (methods.md §2): the baseline every ratio is measured against."""
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F

from bench.core.search import Dim, LogUniform
from methods.base import Method
from methods.registry import METHODS


@METHODS.register("ce", "cross-entropy on the noisy labels (baseline)")
class CE(Method):
    display_name = "CE"
    colour = "#4d4d4d"
    order = 0
    family = "baseline"
    is_baseline = True
    search_space: ClassVar[Mapping[str, Dim]] = {
        # the baselines' CIFAR recipes run at 0.1 (DL, GDW, MW-Net), 0.02 (DivideMix), 0.01 (DAL): methods.md §2.2
        "lr": LogUniform(0.01, 0.2),
        # the same recipes use 5e-4, and 1e-4 for DAL's ResNet-18: methods.md §2.2
        "weight_decay": LogUniform(1e-4, 1e-3),
    }

    def loss(self, logits: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        return F.cross_entropy(logits, y, reduction="none")
