"""MW-Net, Meta-Weight-Net (Shu et al., NeurIPS 2019; methods.md §5).

A weighting net V (1 → 100 → 1, ReLU, sigmoid) maps each sample's loss to a weight. Per
iteration, on the bi-level core of `methods.bilevel`:

1. virtual step: weighted loss L(θ, φ) on the training batch, θ̂ = θ − α_t·∇θL (plain SGD at
   the classifier's current learning rate, no momentum or weight decay);
2. meta step: mean CE of θ̂ on a batch of the trusted meta set, back to φ; one step of V's
   optimiser;
3. actual step: weights from the updated V (no grad), the real SGD step on θ.

The official code forwards the training batch twice, once through a throw-away copy (virtual)
and once through the real model (actual), at the same θ. Here one forward of the real model
serves both: its graph is kept for the actual step's backward. The numbers are the same, and
so are the BatchNorm statistics (updated once per batch, by the real forward, as officially).

Defaults follow the noise script `MW-Net.py` (ResNet-32): V trained by Adam 1e-3, weight decay
1e-4; weights normalised by the batch size; V fed the detached loss; the meta set walked in
a cycle. The LT and WRN-28-10 scripts differ (§5.2), each one hyperparameter set away:
`MWNET_LT` and `MWNET_WRN` below.

Diagnostics (every epoch; GDW and FaMUS record the same): `weight_mean`, the mean weight of the
actual steps' samples, and `weight_clean` / `weight_noisy`, its mean over the samples whose given
label is clean / noisy: whether the learnt weights tell the two apart, and (with "mean"
normalisation) how far they scale the classifier's step down from plain CE's.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.core.hparams import Range, Rule
from bench.core.search import Dim, LogUniform
from methods.base import Batch, MethodContext
from methods.bilevel import META_GRADS, BilevelMethod, LookAhead, MetaSampler, VirtualSGD
from methods.registry import METHODS

WEIGHT_NORMS = ("mean", "sum")
META_OPTIMIZERS = ("adam", "sgd")

#: the LT script's choices (`meta-weight-net-class-imbalance.py`, methods.md §5.2)
MWNET_LT: dict[str, Any] = {
    "meta_optimizer": "sgd", "meta_lr": 1e-5, "meta_momentum": 0.9, "meta_nesterov": True,
    "meta_weight_decay": 5e-4, "weight_norm": "sum", "detach_loss_input": False, "meta_sampling": "random",
}

#: the WRN-28-10 noise script's choices (`train_WRN-28-10_Meta_PGC.py`, methods.md §5.2): V by SGD
#: 1e-3 / 0.9 Nesterov / 5e-4, losses normalised by Σv, V fed the detached loss (`cost_v.data`), a
#: fresh meta batch each step (`next(iter(train_meta_loader))`). Its training batches are drawn
#: the same way (with replacement across steps); the engine's epochs draw them without.
MWNET_WRN: dict[str, Any] = {
    "meta_optimizer": "sgd", "meta_lr": 1e-3, "meta_momentum": 0.9, "meta_nesterov": True,
    "meta_weight_decay": 5e-4, "weight_norm": "sum", "detach_loss_input": True, "meta_sampling": "random",
}


class WeightNet(nn.Module):
    """V(ℓ; φ): per-sample loss (N) → weight in (0, 1) (N), an MLP 1 → hidden → 1 with sigmoid."""

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, losses: Tensor) -> Tensor:
        return torch.sigmoid(self.net(losses.float()[:, None])).squeeze(1)


def weighted_mean(losses: Tensor, weights: Tensor, norm: str) -> Tensor:
    """Σ v ℓ / n ("mean", the noise script) or Σ v ℓ / Σ v ("sum"; Σ v = 0 falls back to n)."""
    total = (weights * losses).sum()
    if norm == "mean":
        return total / len(losses)
    denom = weights.sum()
    return total / torch.where(denom != 0, denom, torch.full_like(denom, float(len(losses))))


def build_meta_optimizer(params: Any, hp: dict[str, Any]) -> torch.optim.Optimizer:
    """The meta-parameters' optimiser: "adam" (lr, weight_decay) or "sgd" (+ momentum, nesterov)."""
    if hp["meta_optimizer"] == "adam":
        return torch.optim.Adam(params, lr=hp["meta_lr"], weight_decay=hp["meta_weight_decay"])
    if hp["meta_optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=hp["meta_lr"], momentum=hp["meta_momentum"],
                               nesterov=hp["meta_nesterov"], weight_decay=hp["meta_weight_decay"])
    raise ValueError(f"meta_optimizer must be 'adam' or 'sgd', got {hp['meta_optimizer']!r}")


@METHODS.register("mwnet", "Meta-Weight-Net: loss -> weight MLP learned on a clean meta set")
class MWNet(BilevelMethod):
    """The bi-level template: `train_step` = `virtual_step` → `meta_step` → `actual_step`.

    GDW and FaMUS subclass it and replace the pieces that differ.
    """

    display_name = "MW-Net"
    colour = "#2ca02c"
    order = 50
    family = "meta re-weighting (clean meta set)"
    throughput_target = 5.0  # issue 6: an MW-Net epoch within 5x a CE epoch on an H100
    uses_meta_set: ClassVar[bool] = True
    uses_indices: ClassVar[bool] = True  # for the weight diagnostics only
    trains_through_training_forward: ClassVar[bool] = True  # GDW and FaMUS too
    defaults: ClassVar[dict[str, Any]] = {
        "hidden": 100,
        "meta_optimizer": "adam",
        "meta_lr": 1e-3,
        "meta_momentum": 0.9,
        "meta_nesterov": True,
        "meta_weight_decay": 1e-4,
        "meta_batch_size": 100,
        "meta_sampling": "cycle",
        "weight_norm": "mean",
        "detach_loss_input": True,
        "bn": "scratch",
        # how the meta gradient is computed (methods.bilevel): exact either way, "jvp" cheaper
        "meta_grad": "jvp",
    }
    hparam_rules: ClassVar[Mapping[str, Rule]] = {
        **BilevelMethod.hparam_rules,
        "hidden": Range(ge=1),
        "meta_optimizer": META_OPTIMIZERS,
        "meta_lr": Range(gt=0),
        "meta_momentum": Range(ge=0, lt=1),
        "meta_weight_decay": Range(ge=0),
        "meta_batch_size": Range(ge=1),
        "meta_sampling": MetaSampler.MODES,
        "weight_norm": WEIGHT_NORMS,
        "meta_grad": META_GRADS,
    }
    search_space: ClassVar[Mapping[str, Dim]] = {
        # V's learning rate: 1e-3 in the noise scripts, 1e-5 in the LT script (methods.md §5.2)
        "meta_lr": LogUniform(1e-5, 1e-2),
        # all three MW-Net scripts train the classifier at 0.1, FaMUS's re-run at 0.05 (methods.md §5.2)
        "lr": LogUniform(0.01, 0.2),
        # 5e-4 in every MW-Net script (methods.md §5.2)
        "weight_decay": LogUniform(1e-4, 1e-3),
    }
    # "meta": the meta sampler's place in its cycle, so that a resumed run draws the same batches
    state_attrs = (*BilevelMethod.state_attrs, "vnet", "meta_optimizer", "meta")

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        if ctx.meta_images is None or ctx.meta_y is None:
            raise ValueError(f"{type(self).__name__} needs the trusted meta set")
        hp = self.hp
        self.vnet = WeightNet(hp["hidden"]).to(ctx.device)
        self.meta_optimizer = build_meta_optimizer(self.vnet.parameters(), hp)
        self.meta = MetaSampler(ctx.meta_images, ctx.meta_y, hp["meta_batch_size"], ctx.generator,
                                mode=hp["meta_sampling"])
        self._weights: list[tuple[Tensor, Tensor, Tensor]] = []  # the epoch's (index, label, weight)

    def train_epoch(self, epoch: int, batches: Iterable[Batch]) -> Tensor:
        """The default epoch, then the weights its actual steps gave as diagnostics."""
        self._weights = []
        loss = super().train_epoch(epoch, batches)
        if self._weights:
            index, labels, weights = (torch.cat(part) for part in zip(*self._weights))
            clean, noisy = self.ctx.diagnostics.mean_by_label(index, labels, weights)
            self.ctx.diagnostics.record("weight_mean", float(weights.double().mean().item()))
            self.ctx.diagnostics.record("weight_clean", clean)
            self.ctx.diagnostics.record("weight_noisy", noisy)
        self._weights = []
        return loss

    def note_weights(self, batch: Batch, weights: Tensor) -> None:
        """Keep the per-sample weights of an actual step for the epoch's diagnostics (no host sync)."""
        if batch.index is not None:
            self._weights.append((batch.index, batch.y, weights.detach()))

    # --- the three steps -----------------------------------------------------------------
    def train_step(self, batch: Batch, epoch: int) -> Tensor:
        logits = self.training_forward(batch.x)  # one forward at θ: the virtual and the actual step share it
        losses = F.cross_entropy(logits.float(), batch.y, reduction="none")
        step = self.virtual_step(batch, logits, losses)
        self.meta_step(step)
        return self.actual_step(batch, logits, losses)

    def virtual_step(self, batch: Batch, logits: Tensor, losses: Tensor) -> LookAhead:
        """θ̂(φ) after plain SGD on the V-weighted loss, the meta gradient through all of θ."""
        v = self.vnet(losses.detach() if self.hp["detach_loss_input"] else losses)
        loss = weighted_mean(losses, v, self.hp["weight_norm"])
        return self.look_ahead(loss, logits, batch.x, rule=VirtualSGD())

    def meta_step(self, step: LookAhead) -> None:
        """Mean CE of θ̂ on a meta batch, differentiated to φ; one step of V's optimiser."""
        self.meta_update(self.meta_loss(step.fast, *self.meta.next()), [(self.meta_optimizer, self.vnet.parameters())],
                         step=step)

    def actual_step(self, batch: Batch, logits: Tensor, losses: Tensor) -> Tensor:
        """The real SGD step on the loss weighted by the updated V."""
        with torch.no_grad():
            v = self.vnet(losses.detach())
        self.note_weights(batch, v)
        loss = weighted_mean(losses, v, self.hp["weight_norm"])
        self.sgd_step(loss)
        return loss.detach()

    def modules(self) -> list[nn.Module]:
        return [self.model, self.vnet]
