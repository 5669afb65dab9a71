"""Plain cross-entropy (methods.md §2): the baseline every ratio is measured against."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.base import Method
from methods.registry import METHODS


@METHODS.register("ce", "cross-entropy on the noisy labels (baseline)")
class CE(Method):
    display_name = "CE"
    colour = "#4d4d4d"
    order = 0
    family = "baseline"
    is_baseline = True

    def loss(self, logits: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        return F.cross_entropy(logits, y, reduction="none")
