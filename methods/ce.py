"""Plain cross-entropy (methods.md §2): the baseline every ratio is measured against."""
from __future__ import annotations

import torch
import torch.nn.functional as F

import methods
from methods.base import Method


@methods.METHODS.register("ce", "cross-entropy on the noisy labels (baseline)")
class CE(Method):
    def loss(self, logits: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        return F.cross_entropy(logits, y, reduction="none")
