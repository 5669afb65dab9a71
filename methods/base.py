"""The method interface the engine drives (the DomainBed pattern: the harness owns the loop).

A method owns its networks and optimisers. The engine calls, per epoch: `set_lr`,
`on_epoch_start`, `train_epoch` (default: `train_step` over the batches), and `predict` for
evaluation. What a method may read is explicit: `MethodContext` carries the noisy training
labels and class counts, the trusted meta set only for methods that declare
`uses_meta_set = True`, and never the clean labels (only `Diagnostics` can score against them).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from bench.core.specs import OptimSpec
from bench.nn.speed import ActiveSpeed, prepare_model


def check_choices(hparams: Mapping[str, Any], allowed: Mapping[str, Sequence[Any]]) -> None:
    """Raise ValueError naming the first hyperparameter whose value is not one of its choices."""
    for key, choices in allowed.items():
        if hparams[key] not in choices:
            raise ValueError(f"{key} must be one of {tuple(choices)}, got {hparams[key]!r}")


@dataclass
class Batch:
    """One training batch: augmented, normalised images, noisy labels, and the samples' indices
    into the training set (None unless the method declares `uses_indices`)."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor | None = None


class Diagnostics:
    """The only door to the clean labels: methods submit guesses and get back a score.

    Recorded values become extra columns of the per-epoch table.
    """

    def __init__(self, true_labels: torch.Tensor) -> None:
        self._true = true_labels
        self.values: dict[str, float] = {}

    def label_accuracy(self, index: torch.Tensor, labels: torch.Tensor) -> float:
        """Percentage of `labels` (for training samples `index`) that equal the clean labels."""
        if index.numel() == 0:
            return float("nan")
        return float((self._true[index] == labels).float().mean().item() * 100.0)

    def record(self, name: str, value: float) -> None:
        self.values[name] = float(value)

    def pop(self) -> dict[str, float]:
        values, self.values = self.values, {}
        return values


@dataclass
class MethodContext:
    """What the harness hands to a method at construction."""

    num_classes: int
    in_channels: int
    image_size: int
    epochs: int
    batch_size: int
    steps_per_epoch: int
    device: torch.device
    optim: OptimSpec
    train_y: torch.Tensor  # noisy labels of the training set
    noisy_counts: list[int]
    model_factory: Callable[[], nn.Module]
    transform: Callable[..., torch.Tensor]
    generator: torch.Generator
    diagnostics: Diagnostics
    meta_x: torch.Tensor | None = None
    meta_y: torch.Tensor | None = None
    #: the training images (uint8, un-augmented, aligned with train_y), for per-sample passes
    train_x: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: the speed settings in force (bf16 autocast, channels-last, compile); all off by default
    speed: ActiveSpeed = field(default_factory=ActiveSpeed)

    def build_model(self) -> nn.Module:
        """A freshly initialised backbone on the run's device (channels-last / compiled when active)."""
        return prepare_model(self.model_factory().to(self.device), self.speed)

    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.SGD:
        """The classifier's SGD as the run's recipe specifies it."""
        o = self.optim
        return torch.optim.SGD(
            params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov
        )


class Method:
    """Base class: one backbone, one SGD optimiser, a per-sample loss in `loss`."""

    #: per-method default hyperparameters, the single place they are defined
    defaults: ClassVar[dict[str, Any]] = {}
    #: reads the trusted clean meta set (MW-Net, GDW, FaMUS)
    uses_meta_set: ClassVar[bool] = False
    #: reads sample indices (methods that keep per-sample state)
    uses_indices: ClassVar[bool] = False
    #: its backbone may be `torch.compile`d (False for methods that call it functionally,
    #: i.e. the look-ahead methods, whose meta steps stay eager)
    compilable: ClassVar[bool] = True

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        self.ctx = ctx
        self.hp = hparams
        self.model = ctx.build_model()
        self.optimizer = ctx.build_optimizer(self.model.parameters())

    # --- what the engine calls -------------------------------------------------------------
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimisers that follow the run's learning-rate schedule."""
        return [self.optimizer]

    def modules(self) -> list[nn.Module]:
        """Networks whose train/eval mode the engine switches."""
        return [self.model]

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers():
            for group in opt.param_groups:
                group["lr"] = lr

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for methods that re-split or re-rank the data each epoch."""

    def epoch_train_indices(self, epoch: int) -> torch.Tensor | None:
        """Training-set indices this epoch's batches are drawn from (None: all of them).

        Called after `on_epoch_start`; e.g. Dynamic Loss holds its meta samples out."""
        return None

    def train_epoch(self, epoch: int, batches: Iterable[Batch]) -> torch.Tensor:
        """One pass over `batches`; returns the mean training loss as a 0-d tensor (no host sync)."""
        total = torch.zeros((), device=self.ctx.device)
        steps = 0
        for batch in batches:
            total += self.train_step(batch, epoch)
            steps += 1
        return total / max(steps, 1)

    def forward(self, x: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
        """Training logits of a plain (not look-ahead) step: bf16 autocast when active, returned
        in fp32 so that per-sample losses and weights are computed in fp32."""
        with self.ctx.speed.autocast():
            logits = (model or self.model)(x)
        return logits.float()

    def train_step(self, batch: Batch, epoch: int) -> torch.Tensor:
        """One SGD step on `loss`; returns the detached batch loss."""
        logits = self.forward(batch.x)
        loss = self.loss(logits, batch.y, epoch).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def loss(self, logits: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        """Per-sample training loss (shape N)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time logits (the engine has switched `modules()` to eval mode)."""
        return self.model(x)

    @torch.no_grad()
    def predict_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Test-time logits and, for methods with several networks, each network's own logits
        by name (the engine records their accuracies as `test_acc_<name>`)."""
        return self.predict(x), {}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
