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
a cycle. The LT script differs (§5.2) and is one hyperparameter set away: `MWNET_LT` below.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import methods
from methods.base import Batch, Method, MethodContext, check_choices
from methods.bilevel import (
    BN_MODES,
    MetaSampler,
    VirtualSGD,
    apply_gradients,
    functional_forward,
    look_ahead,
    meta_gradients,
)

WEIGHT_NORMS = ("mean", "sum")

#: the LT script's choices (`meta-weight-net-class-imbalance.py`, methods.md §5.2)
MWNET_LT: dict[str, Any] = {
    "meta_optimizer": "sgd", "meta_lr": 1e-5, "meta_momentum": 0.9, "meta_nesterov": True,
    "meta_weight_decay": 5e-4, "weight_norm": "sum", "detach_loss_input": False, "meta_sampling": "random",
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


@methods.METHODS.register("mwnet", "Meta-Weight-Net: loss -> weight MLP learned on a clean meta set")
class MWNet(Method):
    """The bi-level template: `train_step` = `virtual_step` → `meta_step` → `actual_step`.

    GDW and FaMUS subclass it and replace the pieces that differ.
    """

    compilable = False  # the look-ahead calls the backbone functionally: eager only

    uses_meta_set: ClassVar[bool] = True
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
    }

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        check_choices(hparams, {"weight_norm": WEIGHT_NORMS, "bn": BN_MODES})
        if ctx.meta_x is None or ctx.meta_y is None:
            raise ValueError(f"{type(self).__name__} needs the trusted meta set")
        self.params = dict(self.model.named_parameters())
        self.vnet = WeightNet(hparams["hidden"]).to(ctx.device)
        self.meta_optimizer = build_meta_optimizer(self.vnet.parameters(), hparams)
        self.meta = MetaSampler(ctx.meta_x, ctx.meta_y, hparams["meta_batch_size"], ctx.transform,
                                ctx.generator, mode=hparams["meta_sampling"])

    # --- the three steps -----------------------------------------------------------------
    def train_step(self, batch: Batch, epoch: int) -> Tensor:
        logits = self.model(batch.x)  # one forward at θ: the virtual and the actual step share it
        losses = F.cross_entropy(logits.float(), batch.y, reduction="none")
        fast = self.virtual_step(batch, logits, losses)
        self.meta_step(fast)
        return self.actual_step(batch, logits, losses)

    def virtual_step(self, batch: Batch, logits: Tensor, losses: Tensor) -> dict[str, Tensor]:
        """θ̂(φ) after plain SGD on the V-weighted loss, second order through all of θ."""
        v = self.vnet(losses.detach() if self.hp["detach_loss_input"] else losses)
        loss = weighted_mean(losses, v, self.hp["weight_norm"])
        fast, _ = look_ahead(self.params, loss, self.current_lr(), rule=VirtualSGD())
        return fast

    def meta_step(self, fast: dict[str, Tensor]) -> None:
        """Mean CE of θ̂ on a meta batch, differentiated to φ; one step of V's optimiser."""
        x_meta, y_meta = self.meta.next()
        meta_logits = functional_forward(self.model, fast, x_meta, self.hp["bn"])
        meta_loss = F.cross_entropy(meta_logits.float(), y_meta)
        meta_params = list(self.vnet.parameters())
        apply_gradients(self.meta_optimizer, meta_params, meta_gradients(meta_loss, meta_params))

    def actual_step(self, batch: Batch, logits: Tensor, losses: Tensor) -> Tensor:
        """The real SGD step on the loss weighted by the updated V."""
        with torch.no_grad():
            v = self.vnet(losses.detach())
        loss = weighted_mean(losses, v, self.hp["weight_norm"])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    # --- helpers -------------------------------------------------------------------------
    def current_lr(self) -> float:
        """α_t of the virtual step: the classifier's learning rate right now."""
        return float(self.optimizer.param_groups[0]["lr"])

    def modules(self) -> list[nn.Module]:
        return [self.model, self.vnet]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "vnet": self.vnet.state_dict(),
                "meta_optimizer": self.meta_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.vnet.load_state_dict(state["vnet"])
        self.meta_optimizer.load_state_dict(state["meta_optimizer"])
