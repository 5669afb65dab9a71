"""GDW, Generalized Data Weighting (Chen et al., NeurIPS 2021; methods.md §7).

MW-Net's loop and weighting net, but the weights act per class on the gradient of the loss
w.r.t. the logits. For softmax-CE that gradient is ``p − y``; GDW scales it entry by entry,
``(p − y) ⊙ ω / n`` with ω ∈ R^{n×C}, and backpropagates that through the network (paper eq. 2).

Per iteration, on the bi-level core of `methods.bilevel`, with one forward of the real model:

1. first stage: ``p = softmax(z)`` clamped to ≤ 0.999, ``v = V(ℓ.detach())``, ``ω = v·1_C``, and
   the target entry set by the zero-mean constraint ``ω_t = Σ_{j≠t} ω_j p_j / (1 − p_t)``
   (paper eq. 4), so that ``Σ_j ω_j (p_j − y_j) = 0``;
2. virtual step: ``g = J_zᵀ (p − y) ⊙ ω / n`` (second order), ``θ̂ = θ − α_t g``, plain SGD at
   the classifier's current learning rate;
3. meta step: mean CE of θ̂ on a meta batch; one backward gives V's gradient (Adam step) and
   the "intermediate gradient" ``G = ∂L_meta/∂ω``; second stage (paper eq. 11):
   ``ω' = ω − clip(η_ω·G/‖G‖₁, −c, c)``, ‖G‖₁ over the whole n×C matrix;
4. actual step: ω' clamped to [1e-6, 1e6], its target entry recomputed by the zero-mean
   constraint, ``(p − y) ⊙ ω' / n`` backpropagated through the logits, the real SGD step.
   V's updated φ is not used here (it only serves the next iteration), as in the official code.
   Its weight diagnostics (MW-Net's) read each sample's target entry ω'_t.

Against the official `main.py` (mode `gdw`): the training batch is forwarded once, at θ, and
that forward serves steps 1, 2 and 4 (the official code forwards it through a throw-away copy
for the virtual step and again through the real model for the actual step: same θ, same batch,
so the same p). Its third forward (a further copy whose output is never used) and its stray
``grad_sum.backward()`` into V before the meta step (wiped by the meta optimiser's zero_grad)
are skipped: neither changes a number. p is clamped in value only (the clamp is not
differentiated), as the official code does on ``p.data``; nothing here differentiates through p.
The reported training loss is the plain mean CE of the batch, as the official log prints.
The meta set is walked in one continuing cycle across epochs (`MetaSampler`); the official
code restarts its meta-loader iterator at every epoch.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.core.hparams import Range, Rule
from bench.core.search import Dim, LogUniform
from methods.base import Batch
from methods.bilevel import LookAhead, VirtualSGD
from methods.mwnet import MWNet
from methods.registry import METHODS

#: range ω' is clamped to before the actual step (the official code's L_EPS, H_EPS)
OMEGA_RANGE = (1e-6, 1e6)

#: CIFAR-100 runs (GDW Tables 2, 3, 4 and 8): η_ω = 1000 (paper App. C, official README)
GDW_CIFAR100: dict[str, Any] = {"omega_lr": 1000.0}

# MW-Net knobs GDW does not have: the weights always scale the logit gradient divided by n,
# and V always reads the detached loss (official `main.py`).
_MWNET_ONLY = ("weight_norm", "detach_loss_input")


def clamped_probs(logits: Tensor, p_max: float) -> Tensor:
    """softmax(z) in fp32, detached, each entry clamped to ≤ `p_max` (keeps 1 − p_t > 0)."""
    return logits.detach().float().softmax(dim=1).clamp(max=p_max)


def zero_mean_weights(omega: Tensor, p: Tensor, y: Tensor) -> Tensor:
    """`omega` (n×C) with each target entry replaced by Σ_{j≠t} ω_j p_j / (1 − p_t).

    Afterwards Σ_j ω_j (p_j − y_j) = 0 for every row (GDW eq. 4), whatever p sums to.
    Differentiable in `omega`; the target entry becomes a function of the others.
    """
    t = y[:, None]
    p_t = p.gather(1, t)
    off_target = (omega * p).scatter(1, t, 0.0).sum(dim=1, keepdim=True)
    return omega.scatter(1, t, off_target / (1.0 - p_t))


def logit_gradient(p: Tensor, y: Tensor, omega: Tensor) -> Tensor:
    """(p − y) ⊙ ω / n: the class-weighted gradient of the batch loss w.r.t. the logits."""
    residual = p - F.one_hot(y, p.shape[1]).to(p.dtype)
    return residual * omega / len(y)


def second_stage_weights(omega: Tensor, omega_grad: Tensor, lr: float, clip: float) -> Tensor:
    """ω' = ω − clip(η_ω·G/‖G‖₁, −c, c), ‖G‖₁ the L1 norm of the whole batch (GDW eq. 11).

    An all-zero G (the official code would divide 0 by 0) leaves ω unchanged.
    """
    norm = omega_grad.abs().sum().clamp_min(torch.finfo(omega_grad.dtype).tiny)
    return omega - (lr * omega_grad / norm).clamp(-clip, clip)


@METHODS.register("gdw", "Generalized Data Weighting: MW-Net's weights refined per class on the logit gradient")
class GDW(MWNet):
    """MW-Net with class-level weights from the two-stage scheme (see the module docstring).

    `train_step` replaces MW-Net's three steps; VNet, its optimiser, the meta sampler and the
    state dict are MW-Net's.
    """

    display_name = "GDW"
    colour = "#17becf"
    order = 60
    defaults: ClassVar[dict[str, Any]] = {
        **{k: v for k, v in MWNet.defaults.items() if k not in _MWNET_ONLY},
        "omega_lr": 100.0,  # η_ω, CIFAR-10 (paper App. C); CIFAR-100: GDW_CIFAR100
        "omega_clip": 0.2,  # c (paper §3.4, official --clip)
        "p_max": 0.999,  # clamp on p before p − y (official code)
    }
    hparam_rules: ClassVar[Mapping[str, Rule]] = {
        **MWNet.hparam_rules, "omega_lr": Range(ge=0), "omega_clip": Range(gt=0), "p_max": Range(gt=0, lt=1),
    }
    dataset_defaults = {"cifar100": GDW_CIFAR100}
    # V's optimiser is fixed in the paper (Adam 1e-3, App. C), so MW-Net's meta_lr is not searched here
    search_space: ClassVar[Mapping[str, Dim]] = {
        # η_ω: 100 on CIFAR-10, 1000 on CIFAR-100 (paper App. C; methods.md §7.2); both inside, with room
        "omega_lr": LogUniform(30.0, 3000.0),
        # GDW's recipe (after MW-Net): 0.1 (paper App. C; methods.md §7.2)
        "lr": LogUniform(0.01, 0.2),
        # GDW's recipe: 5e-4 (paper App. C; methods.md §7.2)
        "weight_decay": LogUniform(1e-4, 1e-3),
    }

    def train_step(self, batch: Batch, epoch: int) -> Tensor:
        logits = self.training_forward(batch.x)  # one forward at θ for the virtual and the actual step
        losses = F.cross_entropy(logits.detach().float(), batch.y, reduction="none")
        p = clamped_probs(logits, self.hp["p_max"])
        omega = self.first_stage_weights(losses, p, batch.y)
        step = self.class_virtual_step(batch.x, logits, p, batch.y, omega)
        omega_grad = self.class_meta_step(step, omega)
        omega2 = second_stage_weights(omega.detach(), omega_grad, self.hp["omega_lr"], self.hp["omega_clip"])
        weights = self.class_actual_step(logits, p, batch.y, omega2)
        self.note_weights(batch, weights.gather(1, batch.y[:, None]).squeeze(1))  # the target entry ω'_t
        return losses.mean()

    def first_stage_weights(self, losses: Tensor, p: Tensor, y: Tensor) -> Tensor:
        """ω = V(ℓ)·1_C with the zero-mean target entry (n×C, attached to φ)."""
        v = self.vnet(losses.detach())
        return zero_mean_weights(v[:, None].expand(-1, p.shape[1]), p, y)

    def class_virtual_step(self, x: Tensor, logits: Tensor, p: Tensor, y: Tensor, omega: Tensor) -> LookAhead:
        """θ̂ = θ − α_t·J_zᵀ (p − y) ⊙ ω / n, the meta gradient through all of θ (`logits` = model(`x`)).

        The surrogate Σ z ⊙ stop(∂L/∂z) has θ-gradient J_zᵀ ∂L/∂z (p is detached); its
        dependence on ω keeps the graph to ω and φ.
        """
        surrogate = (logits.float() * logit_gradient(p, y, omega)).sum()
        return self.look_ahead(surrogate, logits, x, rule=VirtualSGD())

    def class_meta_step(self, step: LookAhead, omega: Tensor) -> Tensor:
        """Mean CE of θ̂ on a meta batch; one Adam step of V; returns G = ∂L_meta/∂ω (n×C)."""
        meta_loss = self.meta_loss(step.fast, *self.meta.next())
        (omega_grad,) = self.meta_update(meta_loss, [(self.meta_optimizer, self.vnet.parameters())], also=[omega],
                                         step=step)
        return omega_grad

    def class_actual_step(self, logits: Tensor, p: Tensor, y: Tensor, omega2: Tensor) -> Tensor:
        """The real SGD step with (p − y) ⊙ ω' / n on the logits, ω' clamped and re-constrained (returned)."""
        weights = zero_mean_weights(omega2.clamp(*OMEGA_RANGE), p, y)
        self.optimizer.zero_grad(set_to_none=True)
        logits.backward(logit_gradient(p, y, weights).to(logits.dtype))
        self.optimizer.step()
        return weights
