"""FaMUS, Faster Meta Update Strategy (Xu et al., CVPR 2021; methods.md §6), on MW-Net.

"MW-Net + FaMUS with a trusted meta set" (FaMUS Tables 1 and 8): MW-Net's loop (`MWNet`), but
the meta gradient to the weighting net V flows only through the layers that a learned,
per-layer gradient sampler switches on (paper Eq. 9). Per iteration:

1. virtual step as MW-Net: one forward at θ, V-weighted loss, virtual gradients g of every
   parameter (`virtual_gradients`, graph kept);
2. per eligible layer l, the sampler Γ_l (FC D_out→128 → PReLU → FC 128→2, hard Gumbel-softmax,
   straight-through) reads ḡ_l, the avg-pooled virtual gradient of the layer's kernel (mean over
   every dim but the output-channel dim, shape D_out, detached; Eq. 8) and outputs r_l ∈ {0, 1};
3. fast weights: on layers θ̂_l = θ_l − α·r_l·g_l (r_l has value 1 and the straight-through
   gradient, so the meta gradient to V flows through g_l); off layers θ̂_l = θ_l − α·(1 − r_l)·ĝ_l
   with ĝ_l = g_l detached (the same value, a constant of the meta gradient; (1 − r_l) only
   gives the sampler its straight-through signal, as the official `_compute_gated_grad` does;
   ``off_gate_gradient=False`` drops it). The final FC always contributes (no sampler), as in
   the official code;
4. meta loss (Eq. 12) L = L_c + λ1·(Σ_l r_l − K)² + λ2·‖ḡ_L^tra − ḡ_L^val‖², with L_c the mean CE
   of θ̂ on a trusted meta batch and ḡ_L^val the avg-pooled gradient of L_c at θ̂ for the FC kernel
   (detached: a target). One backward gives V's and the samplers' gradients; V steps with
   MW-Net's meta optimiser, the samplers with their own SGD (lr δ = 0.1, momentum 0.9, Nesterov,
   no weight decay; §5.1 and the code);
5. actual step as MW-Net with the updated V.

**What a "layer" is.** With ``layer_unit="module"`` (the default, the paper's "layer") a layer
is a module that owns parameters directly: a Conv2d or Linear (weight = the kernel, plus its
bias) or a BatchNorm (affine γ = the kernel, already D_out long, plus β). A layer's parameters
share one gate; BatchNorm layers get their own sampler, they are not folded into the preceding
conv (the paper's Table 4 counts a residual block as "two convolutional layers and two batch
normalization layers"). ResNet-32 thus has 62 sampled layers plus the FC. ``"tensor"`` is the
official code's unit: every parameter tensor (conv weight, BN γ, BN β, …) has its own sampler.

**Where the speed comes from.** An off layer's fast weight has no path to V, so autograd's
meta backward never enters the double backward of its virtual gradient; the second-order work
is the double backward from the loss down to the *lowest* on layer (plus the kernel-gradient
part of each on layer). The first-order backward of L_c through the meta forward still reaches
every eligible layer, because the (1 − r_l) term needs ∂L_c/∂θ̂_l of off layers too; it stops at
the lowest on layer with ``off_gate_gradient=False``, and at the backbone's last stage with
``eligible="last_stage"``. The forward, the virtual backward (graph kept for every layer, as in
the code), the meta forward and the actual step cost what they cost in MW-Net. That is the
``meta_grad="unrolled"`` route; on the default ``"jvp"`` route (methods.bilevel) there is no double
backward at all, and the forward-mode pass carries tangents only from the lowest on layer up (the
on layers and the FC are its tangent names), which is exact for Eq. 9.

**The core's two halves, not `look_ahead`.** The sampler decisions must be known on the host
before the fast weights are built (an off layer is a different graph, not a zero), and deciding
layer by layer would cost one host sync per layer (the official code's `if grad_act > 0.5`).
So `virtual_gradients` computes every virtual gradient with its graph, all samplers run
batched, the decisions come to the host in one transfer per step, and `fast_weights` builds θ̂
from the gated gradients (ineligible layers moved as constants). The per-epoch diagnostics
reuse those host decisions, so they add no sync.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.core.hparams import Range, Rule
from bench.core.search import Choice, Dim, LogUniform
from methods.base import Batch, MethodContext
from methods.bilevel import LookAhead, VirtualSGD, fast_weights, head_gradients, virtual_gradients
from methods.mwnet import MWNet, weighted_mean
from methods.registry import METHODS

LAYER_UNITS = ("module", "tensor")
ELIGIBLE = ("all", "last_stage")
SAMPLER_INPUTS = ("mean", "sum_standardized")
RATE_LOSSES = ("all", "last_sampler")
GRAD_LOSSES = ("paper", "code")

#: Table 8 (long-tailed CIFAR, ResNet-32): β = 1e-5 and δ = 1e-2 (methods.md §6.4, [S]). Only
#: these two: the spec does not say that Table 8 also used MW-Net's LT script, so V keeps the
#: defaults' optimiser; a preset that wants that script too combines `{**MWNET_LT, **FAMUS_LT}`.
FAMUS_LT: dict[str, Any] = {"meta_lr": 1e-5, "sampler_lr": 1e-2}

#: the official code's FaMUS choices (CNWL script, methods.md §6.3), for ablations: the gated
#: meta gradient's variants, and V as `build_models.py` / `norm_weight` train it (SGD meta_lr 1e-3,
#: momentum 0.9, Nesterov, wd 5e-4; weights normalised by Σv; detached loss input, the default).
#: The DivideMix machinery around it (two nets, GMM meta set, MixMatch losses) is not part of it.
FAMUS_CODE: dict[str, Any] = {
    "eligible": "last_stage", "layer_unit": "tensor", "sampler_input": "sum_standardized",
    "sampler_depth": 3, "rate_loss": "last_sampler", "grad_loss": "code",
    "weight_norm": "sum", "meta_optimizer": "sgd", "meta_lr": 1e-3, "meta_momentum": 0.9,
    "meta_nesterov": True, "meta_weight_decay": 5e-4,
}


# --- layers ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    """One sampled unit: the parameters that share a gate, and the kernel the sampler reads."""

    name: str
    params: tuple[str, ...]
    kernel: str


def classifier_names(model: nn.Module) -> list[str]:
    """Parameter names of the backbone's final classifier `model.fc` (always in the meta path)."""
    ids = {id(p) for p in model.fc.parameters()}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def find_layers(model: nn.Module, unit: str) -> list[Layer]:
    """Every layer but the FC, in registration (≈ forward) order; see the module docstring."""
    if unit not in LAYER_UNITS:
        raise ValueError(f"layer_unit must be one of {LAYER_UNITS}, got {unit!r}")
    skip = set(classifier_names(model))
    layers: list[Layer] = []
    for mod_name, module in model.named_modules():
        own = [f"{mod_name}.{n}" if mod_name else n for n, _ in module.named_parameters(recurse=False)]
        own = [n for n in own if n not in skip]
        if not own:
            continue
        if unit == "tensor":
            layers.extend(Layer(n, (n,), n) for n in own)
        else:
            kernel = next((n for n in own if n.rsplit(".", 1)[-1] == "weight"), own[0])
            layers.append(Layer(mod_name, tuple(own), kernel))
    return layers


def last_stage_prefixes(model: nn.Module) -> list[str]:
    """Top-level children forming the backbone's last stage (before the FC).

    The last child that is a container of parametrised modules (ResNet-32 `layer3`, PreAct-18
    `layer4`, WRN `block3`) plus the parametrised children after it (WRN's final `bn`); for nets
    without stages (MLP, small CNN), the last parametrised child before the FC. A backbone that
    wraps another network names its last stage itself (`last_stage`, e.g. Inception-ResNet-v2).
    """
    declared = getattr(model, "last_stage", None)
    if declared:
        return list(declared)
    children = [(n, c) for n, c in model.named_children()
                if c is not model.fc and any(True for _ in c.parameters())]
    if not children:
        return []
    containers = [i for i, (_, c) in enumerate(children)
                  if any(any(True for _ in s.parameters()) for s in c.children())]
    start = containers[-1] if containers else len(children) - 1
    return [n for n, _ in children[start:]]


def row_stats(grad: Tensor) -> tuple[Tensor, Tensor]:
    """Per-output-row mean and (unbiased) std of a kernel gradient; a 1-D tensor is one row."""
    rows = grad.reshape(grad.shape[0], -1) if grad.dim() > 1 else grad.reshape(1, -1)
    return rows.mean(1), rows.std(1)


def in_prefixes(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def pooled_gradient(grad: Tensor, mode: str) -> Tensor:
    """The sampler's input for a kernel gradient (D_out, ...) → (D_out,).

    "mean": Avg-Pool over every dim but the first (paper Eq. 8). "sum_standardized": the code's
    sum over those dims, then standardised across the D_out entries.
    """
    flat = grad.reshape(grad.shape[0], -1)
    if mode == "mean":
        return flat.mean(1)
    summed = flat.sum(1)
    return (summed - summed.mean()) / (summed.std() + 1e-9)


# --- the samplers -------------------------------------------------------------------------------
class SamplerBank(nn.Module):
    """`count` independent samplers of one input width, evaluated together with batched matmuls.

    Each is width → hidden (→ hidden) → 2 with a PReLU (one slope, init 0.25) after every hidden
    layer; weights and biases initialised as `nn.Linear` does (U(±1/√fan_in)).
    """

    def __init__(self, count: int, width: int, hidden: int, depth: int) -> None:
        super().__init__()
        dims = [width] + [hidden] * (depth - 1) + [2]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(count, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(count, fan_out).uniform_(-bound, bound)))
        self.slopes = nn.ParameterList(nn.Parameter(torch.full((count, 1), 0.25)) for _ in range(depth - 1))

    def forward(self, x: Tensor) -> Tensor:
        """(count, width) → logits (count, 2); logit 1 is "on"."""
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b[:, None, :], h[:, None, :], w).squeeze(1)
            if i < len(self.slopes):
                h = torch.where(h >= 0, h, self.slopes[i] * h)
        return h


class GradientSamplers(nn.Module):
    """Γ_1 … Γ_L: one sampler per layer, grouped by input width into `SamplerBank`s."""

    def __init__(self, widths: Sequence[int], hidden: int = 128, depth: int = 2) -> None:
        super().__init__()
        if depth not in (2, 3):
            raise ValueError(f"sampler_depth must be 2 (paper) or 3 (code), got {depth}")
        groups: dict[int, list[int]] = {}
        for i, width in enumerate(widths):
            groups.setdefault(width, []).append(i)
        self.members = [tuple(m) for m in groups.values()]
        self.banks = nn.ModuleList(SamplerBank(len(m), w, hidden, depth) for w, m in groups.items())
        order = [i for m in self.members for i in m]
        self.register_buffer("restore", torch.argsort(torch.tensor(order, dtype=torch.long)), persistent=False)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Per-layer inputs (each (D_l,)) → logits (L, 2) in layer order."""
        if not self.members:
            return torch.zeros(0, 2)
        out = [bank(torch.stack([inputs[i] for i in m])) for bank, m in zip(self.banks, self.members)]
        return torch.cat(out)[self.restore]


def gumbel_soft(logits: Tensor, tau: float) -> Tensor:
    """Gumbel-softmax probabilities softmax((logits + G)/τ), G from torch's global RNG."""
    gumbel = -torch.empty_like(logits).exponential_().log()
    return ((logits + gumbel) / tau).softmax(-1)


def straight_through(soft: Tensor, hard: Tensor) -> Tensor:
    """`hard`'s exact value with `soft`'s gradient (hard + soft − soft, the last two cancelling)."""
    return hard + (soft - soft.detach())


# --- the method ---------------------------------------------------------------------------------
@dataclass
class GatedLookAhead(LookAhead):
    """The virtual step's result: fast weights, virtual gradients and the gates.

    `gate` (L,) has the hard 0/1 values with the straight-through gradient to the samplers;
    `on` holds the same decisions on the host. On the jvp route the tangent names are the on
    layers' and the FC's parameters: the meta gradient to V reaches θ̂ only through them (Eq. 9).
    """

    gate: Tensor | None = None
    on: list[bool] = field(default_factory=list)


@METHODS.register("famus", "MW-Net + FaMUS: meta gradient only through layers a learned sampler picks")
class FaMUS(MWNet):
    """MW-Net whose meta gradient runs through a per-iteration, learned subset of layers.

    Set `forced_gates` (a bool tensor, one entry per sampled layer) to override the samplers'
    decisions (tests, ablations); the samplers still receive their straight-through gradients.
    """

    display_name = "FaMUS"
    colour = "#9467bd"
    order = 70
    defaults: ClassVar[dict[str, Any]] = {
        **MWNet.defaults,  # V, its optimiser (β = meta_lr 1e-3) and the meta set as MW-Net
        "num_active": 4,  # K, the expected number of active layers (Eq. 10) [P][S][C]
        "lambda_r": 0.1,  # λ1 (§5.1)
        "lambda_g": 0.1,  # λ2 (§5.1)
        "sampler_hidden": 128,  # §4.2
        # §4.2: FC1 → PReLU → FC2 ("two FC layers"); the code has three (D_out→128→128→2)
        "sampler_depth": 2,
        # Eq. 8: Avg-Pool of the kernel gradient; the code sums instead and standardises
        "sampler_input": "mean",
        "gumbel_tau": 5.0,  # the code's temperature; the paper gives none (methods.md §6.4)
        "sampler_lr": 0.1,  # δ, fixed (§5.1)
        "sampler_momentum": 0.9,
        "sampler_nesterov": True,  # the code's sampler SGD (methods.md §6.3)
        "sampler_weight_decay": 0.0,
        # §4.2 samples every layer; the code (top_k) only the last stage's tensors, the rest of
        # the backbone moving with detached gradients
        "eligible": "all",
        "layer_unit": "module",  # see the module docstring; "tensor" = the code's unit
        # Eq. 10 sums r_l over all sampled layers; the code's list holds only the last one (a bug)
        "rate_loss": "all",
        # Eq. 11 compares avg-pooled FC-kernel gradients; the code matches per-row mean/std of
        # the FC weight and bias gradients instead
        "grad_loss": "paper",
        # not in the paper; the code moves an off layer by (1 − r_l)·ĝ_l so that its sampler also
        # learns from L_c. False: off layers are plain constants, their samplers learn from L_r
        # only, and the first-order meta backward also stops at the lowest on layer (cheaper)
        "off_gate_gradient": True,
    }
    hparam_rules: ClassVar[Mapping[str, Rule]] = {
        **MWNet.hparam_rules,
        "num_active": Range(ge=0),
        "lambda_r": Range(ge=0),
        "lambda_g": Range(ge=0),
        "sampler_hidden": Range(ge=1),
        "sampler_depth": (2, 3),
        "sampler_input": SAMPLER_INPUTS,
        "gumbel_tau": Range(gt=0),
        "sampler_lr": Range(gt=0),
        "sampler_momentum": Range(ge=0, lt=1),
        "sampler_weight_decay": Range(ge=0),
        "eligible": ELIGIBLE,
        "layer_unit": LAYER_UNITS,
        "rate_loss": RATE_LOSSES,
        "grad_loss": GRAD_LOSSES,
    }
    # K (num_active) is fixed at 4 in every experiment (§5.1, Table 4) and δ (sampler_lr) only switches with the
    # setting alongside β, so neither is searched
    search_space: ClassVar[Mapping[str, Dim]] = {
        # β, V's learning rate: 1e-3 for noise, 1e-5 for LT (Table 8) (methods.md §6.4), as MW-Net's range
        "meta_lr": LogUniform(1e-5, 1e-2),
        # λ1 of L_r: 0.1 in §5.1, chosen from {0, 0.1} for the SOTA and LT runs (supplement; methods.md §6.4)
        "lambda_r": Choice((0.0, 0.1)),
        # λ2 of L_g: likewise 0.1, chosen from {0, 0.1} (supplement; methods.md §6.4)
        "lambda_g": Choice((0.0, 0.1)),
        # FaMUS's recipes: 0.05 (Table 1, WRN), 0.1 (Table 8, LT), 0.02 (SOTA, PreAct-18) (methods.md §6.4)
        "lr": LogUniform(0.01, 0.2),
        # 5e-4 in every FaMUS setting (methods.md §6.4)
        "weight_decay": LogUniform(1e-4, 1e-3),
    }
    state_attrs = (*MWNet.state_attrs, "samplers", "sampler_optimizer")

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        hparams = self.hp
        self.rule = VirtualSGD()  # MW-Net's plain virtual SGD
        self.fc_names = classifier_names(self.model)
        self.fc_kernel = next(n for n in self.fc_names if n.rsplit(".", 1)[-1] == "weight")
        layers = find_layers(self.model, hparams["layer_unit"])
        if hparams["eligible"] == "last_stage":
            stage = last_stage_prefixes(self.model)
            self.layers = [layer for layer in layers if in_prefixes(layer.name, stage)]
        else:
            self.layers = layers
        sampled = {n for layer in self.layers for n in layer.params}
        self.sampled_names = [n for n in self.params if n in sampled]
        self.frozen_names = [n for n in self.params if n not in sampled and n not in self.fc_names]
        widths = [self.params[layer.kernel].shape[0] for layer in self.layers]
        self.samplers = GradientSamplers(widths, hparams["sampler_hidden"], hparams["sampler_depth"]).to(ctx.device)
        self.sampler_optimizer = torch.optim.SGD(
            self.samplers.parameters(), lr=hparams["sampler_lr"], momentum=hparams["sampler_momentum"],
            nesterov=hparams["sampler_nesterov"], weight_decay=hparams["sampler_weight_decay"],
        )
        self.forced_gates: Tensor | None = None
        self._stats = [0, 0, 0]  # (iterations, on-layer count, layers from the lowest on one up)

    # --- one iteration -----------------------------------------------------------------------
    def train_step(self, batch: Batch, epoch: int) -> Tensor:
        logits = self.training_forward(batch.x)  # shared by the virtual and the actual step, as in MW-Net
        losses = F.cross_entropy(logits.float(), batch.y, reduction="none")
        step = self.gated_virtual_step(batch.x, logits, losses)
        self.gated_meta_step(step)
        return self.actual_step(batch, logits, losses)

    def gated_virtual_step(self, x: Tensor, logits: Tensor, losses: Tensor) -> GatedLookAhead:
        """Virtual gradients, the samplers' decisions, and the gated fast weights (`losses` per sample
        of `logits` = model(`x`))."""
        v = self.vnet(losses.detach() if self.hp["detach_loss_input"] else losses)
        loss = weighted_mean(losses, v, self.hp["weight_norm"])
        lr = self.current_lr()
        names = self.sampled_names + self.fc_names + self.frozen_names
        jvp = self.hp["meta_grad"] == "jvp"
        if jvp:
            grads, head_grad = head_gradients(self.params, loss, logits, names)
        else:
            grads, head_grad = virtual_gradients(self.params, loss, names), None
        gate, on = self.sample_gates(grads)
        tangent_names: tuple[str, ...] = ()
        if jvp:  # leaves for the layers the meta gradient runs through: the on layers and the FC
            tangent_names = (*[n for layer, is_on in zip(self.layers, on) if is_on for n in layer.params],
                             *self.fc_names)
            for name in tangent_names:
                grads[name].requires_grad_(True)
        gated = {name: grads[name] for name in self.fc_names}
        for layer, r, is_on in zip(self.layers, gate.unbind(0), on):
            for name in layer.params:
                g = grads[name]
                if is_on:
                    gated[name] = r * g
                else:
                    gated[name] = (1.0 - r) * g.detach() if self.hp["off_gate_gradient"] else g.detach()
        gated.update({name: grads[name] for name in self.frozen_names})
        fast = fast_weights(self.params, gated, lr, self.rule, constant=self.frozen_names)
        self._count(on)
        return GatedLookAhead(fast, grads, x if jvp else None, head_grad, tangent_names, gate=gate, on=on)

    def sample_gates(self, grads: dict[str, Tensor]) -> tuple[Tensor, list[bool]]:
        """r_l for every sampled layer: (straight-through gate (L,), host decisions)."""
        inputs = [pooled_gradient(grads[layer.kernel].detach(), self.hp["sampler_input"]) for layer in self.layers]
        logits = self.samplers(inputs).float()
        if not self.layers:
            return logits.new_zeros(0), []
        soft = gumbel_soft(logits, self.hp["gumbel_tau"])[:, 1]
        hard = (soft > 0.5).to(soft.dtype) if self.forced_gates is None else self.forced_gates.to(soft)
        on = hard.to("cpu", torch.bool).tolist()  # the one host transfer per step (module docstring)
        return straight_through(soft, hard), on

    def meta_objective(self, step: GatedLookAhead, x_meta: Tensor, y_meta: Tensor) -> dict[str, Tensor]:
        """L_c, L_r, L_g and the total L_c + λ1·L_r + λ2·L_g (Eq. 12)."""
        ce = self.meta_loss(step.fast, x_meta, y_meta)
        # Σ r_l over the sampled layers (the always-on FC is not counted, as in the code)
        active = step.gate[-1:].sum() if self.hp["rate_loss"] == "last_sampler" else step.gate.sum()
        rate = (active - self.hp["num_active"]) ** 2
        grad = self.gradient_match_loss(step, ce) if self.hp["lambda_g"] else ce.new_zeros(())
        total = ce + self.hp["lambda_r"] * rate + self.hp["lambda_g"] * grad
        return {"ce": ce, "rate": rate, "grad": grad, "total": total}

    def gradient_match_loss(self, step: GatedLookAhead, ce: Tensor) -> Tensor:
        """L_g: the FC's virtual gradient (attached to V) against L_c's gradient at θ̂ (detached)."""
        if self.hp["grad_loss"] == "paper":  # ‖ḡ_L^tra − ḡ_L^val‖², Avg-Pool of the FC kernel (Eq. 11)
            (val,) = torch.autograd.grad(ce, step.fast[self.fc_kernel], retain_graph=True)
            tra = pooled_gradient(step.grads[self.fc_kernel], "mean")
            return ((tra - pooled_gradient(val.detach(), "mean")) ** 2).sum()
        vals = torch.autograd.grad(ce, [step.fast[n] for n in self.fc_names], retain_graph=True)
        total = ce.new_zeros(())
        for name, val in zip(self.fc_names, vals):
            (mean_t, std_t), (mean_v, std_v) = row_stats(step.grads[name]), row_stats(val.detach())
            total = total + ((mean_t - mean_v) ** 2 + (std_t - std_v) ** 2).mean()
        return total

    def gated_meta_step(self, step: GatedLookAhead) -> None:
        """One backward of the meta loss to V and the samplers; one step of each optimiser."""
        total = self.meta_objective(step, *self.meta.next())["total"]
        self.meta_update(total, [(self.meta_optimizer, self.vnet.parameters()),
                                 (self.sampler_optimizer, self.samplers.parameters())], step=step)

    # --- diagnostics ---------------------------------------------------------------------------
    def _count(self, on: list[bool]) -> None:
        self._stats[0] += 1
        self._stats[1] += sum(on)
        self._stats[2] += len(on) - on.index(True) if any(on) else 0

    def train_epoch(self, epoch: int, batches: Iterable[Batch]) -> Tensor:
        """The default epoch, then the epoch's gate statistics as diagnostics.

        famus_active_frac: mean fraction of sampled layers switched on; famus_depth_frac: mean
        fraction of sampled layers at or above the lowest on layer (how deep the double backward
        goes; 0 when only the FC is on).
        """
        self._stats = [0, 0, 0]
        loss = super().train_epoch(epoch, batches)
        iters, on, depth = self._stats
        n_layers = max(len(self.layers), 1)
        if iters:
            self.ctx.diagnostics.record("famus_active_frac", on / (iters * n_layers))
            self.ctx.diagnostics.record("famus_depth_frac", depth / (iters * n_layers))
        return loss

    # --- state ---------------------------------------------------------------------------------
    def modules(self) -> list[nn.Module]:
        return [*super().modules(), self.samplers]
