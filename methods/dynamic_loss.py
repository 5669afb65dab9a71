"""Dynamic Loss (Jiang, Li et al., TPAMI 2023; methods.md §10) and its Table 7 variants.

The loss is DL = CE_soft(y*, z + q): a corrected label y* and logits shifted by a learned
per-class margin q. A meta-net of two parts produces both (§10.1):

* label corrector (LC): each sample's loss-rank bin r (rank of its CE within its noisy class,
  R bins) → embedding → MLP → sigmoid, a class-wise table g(r | y); y* = g·onehot(y) +
  (1 − g)·y', where y' is the classifier's detached prediction (softmax in warm-up, a hard
  Gumbel-softmax sample afterwards);
* margin generator (MG): a learned input vector → MLP → q ∈ R^C, used in training losses only
  (`predict` returns the raw logits).

There is no clean data. Every epoch starts with a ranking pass (eval mode, un-augmented
images, per-sample CE against the given label) that sets the bins; after warm-up it also draws
the meta set by hierarchical sampling (per noisy class, int(M0·n_min) random samples, of which
the int(M0·n_min·M1) lowest-loss ones), holds it out of the epoch's training batches and, at
the end of the epoch, fine-tunes the classifier once over it with CE(onehot(y), z + q) (§10.2).

Per iteration after warm-up, on the bi-level core of `methods.bilevel` (§10.3):

1. virtual step on the WEAK (un-augmented) view: L_v = mean CE_soft(y*, z + q), one
   differentiable copy of the real SGD step (momentum, weight decay, the optimiser's current
   momentum buffers: `VirtualSGD.like`) through all parameters → θ̂;
2. meta step: mean CE of θ̂ on a STRONG meta batch against its given labels (no margin, no
   correction), back to LC and MG; one Adam step;
3. actual step: y* and q from the updated meta-net under no_grad (from the weak logits of step
   1, a fresh Gumbel sample), loss CE_soft(y*, z + q) on the STRONG batch, the real SGD step.

Warm-up (first `warmup_epochs`): plain CE on the strong batch; while the global iteration count
is below `lc_warmup_iters` the LC is also trained to reproduce the given labels,
−Σ onehot(y)·log(y* + 1e-8), with softmax predictions from a no-grad weak forward. MG is not
trained in warm-up.

Diagnostics: `lc_label_acc` and `lc_weight_mean` describe the y* of the actual steps, so they are
recorded in meta-phase epochs only (in warm-up the classifier trains on the given labels; the
LC warm-up's y* is never applied); `meta_set_size` every epoch.

Departures from the official code (jiangwenj02/dynamic_loss), all deliberate:

* Strong view = the run's train-time transform (crop + flip); the official strong view adds
  CIFAR AutoAugment and Cutout 16, which the harness does not implement yet.
* One ranking pass per epoch. The official runner runs a second full pass when it draws the meta
  set and discards the first pass's random primary selection; both passes see the same model in
  eval mode on un-augmented images, so they give the same losses: the second is redundant.
  During warm-up the pass is skipped once the LC warm-up is over (the bins are unused until the
  meta phase; the pass draws no random numbers, so the numbers of a run do not change).
* Bins use exact integer arithmetic, floor(k·R / (n_c + 1)); the code's float expression can land
  one bin lower at an exact bin boundary. Ties in loss keep index order (the code's argsort does
  not define one).
* BatchNorm: with ``bn="scratch"`` (default, the harness's convention) the weak virtual forward,
  the meta forward and the LC warm-up's weak forward do not update the real running statistics;
  ``bn="real"`` lets them, as `higher` probably does in the official code (§10.5).
* The hard Gumbel sample is onehot(argmax(z + G)): with a detached prediction the temperature
  (τ = 1 officially) cannot change it, so it is not a hyperparameter.

Variants (DL Table 7, "+Balanced Softmax" / "+Logit Adjustment"): a fixed base margin is added
to the logits together with q wherever q is used: log n_j (noisy class counts) or
τ·log(n_j / N). The paper does not give τ; Menon et al.'s default τ = 1 is used, which makes the
two variants the same loss (softmax ignores the constant −log N): only τ ≠ 1 separates them, so
`dynamic_loss_la` is not in the default method list (`in_default_grids = False`).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.core.hparams import Range, Rule
from bench.core.search import Dim, LogUniform, Uniform
from methods.base import Batch, MethodContext
from methods.bilevel import (
    META_GRADS,
    BilevelMethod,
    LookAhead,
    MetaSampler,
    VirtualSGD,
    functional_forward,
    momentum_buffers,
)
from methods.registry import METHODS

BASE_MARGINS = ("none", "balanced_softmax", "logit_adjustment")
MG_INPUTS = ("embedding", "ones")
#: images per forward in the ranking pass (eval mode: the batch size does not change the numbers)
RANK_BATCH = 1024

#: CIFAR-100 (DL Table 1, CIFAR-100 column: 50 rank bins; everything else as CIFAR-10), for
#: DL Tables 3, 5 (C-100 columns) and 7 (CIFAR-100-LT)
DYNAMIC_LOSS_CIFAR100: dict[str, Any] = {"rank_bins": 50}


# --- per-sample bookkeeping ---------------------------------------------------------------------
def within_class_positions(labels: Tensor, keys: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Each sample's 0-based position when its class is sorted by `keys` ascending (ties: index
    order), and the class sizes (C)."""
    order = torch.sort(keys, stable=True).indices
    order = order[torch.sort(labels[order], stable=True).indices]
    counts = torch.bincount(labels, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    positions = torch.empty_like(labels)
    positions[order] = torch.arange(len(labels), device=labels.device) - starts[labels[order]]
    return positions, counts


def loss_rank_bins(losses: Tensor, labels: Tensor, num_classes: int, bins: int) -> Tensor:
    """r = floor(k / (n_c + 1) · R) for the sample at ascending-loss position k of its noisy
    class c (n_c samples), methods.md §10.2. Returns int64 bins in [0, R)."""
    k, counts = within_class_positions(labels, losses, num_classes)
    return torch.div(k * bins, counts[labels] + 1, rounding_mode="floor")


def hierarchical_sample(
    losses: Tensor, labels: Tensor, num_classes: int, n_primary: int, n_meta: int, generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """(primary, meta) training indices, both sorted: per noisy class `n_primary` samples at
    random, then the `n_meta` lowest-loss samples of those (DL §3.4)."""
    keys = torch.rand(len(labels), generator=generator).to(labels.device)
    random_position, _ = within_class_positions(labels, keys, num_classes)
    primary = torch.nonzero(random_position < n_primary).squeeze(1)
    loss_position, _ = within_class_positions(labels[primary], losses[primary], num_classes)
    meta = primary[loss_position < n_meta]
    return primary, meta


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Per-sample −Σ_c target_c · log softmax(logits)_c, in fp32."""
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1)


def hard_gumbel_sample(logits: Tensor) -> Tensor:
    """One-hot class sampled from softmax(logits) by the Gumbel-max trick (a detached hard
    Gumbel-softmax); the noise comes from torch's global RNG on the logits' device."""
    gumbel = -torch.empty_like(logits, dtype=torch.float32).exponential_().log()
    index = (logits.detach().float() + gumbel).argmax(dim=1)
    return F.one_hot(index, logits.shape[1]).float()


def base_margin(kind: str, counts: Iterable[int], tau: float, device: torch.device) -> Tensor:
    """The fixed per-class margin of the Table 7 variants: zeros, log n_j, or τ·log(n_j / N).
    A class without any noisy label counts once (log 0 would be −inf)."""
    if kind not in BASE_MARGINS:
        raise ValueError(f"base_margin must be one of {BASE_MARGINS}, got {kind!r}")
    n = torch.tensor(list(counts), dtype=torch.float32, device=device).clamp_min(1.0)
    if kind == "none":
        return torch.zeros_like(n)
    if kind == "balanced_softmax":
        return n.log()
    return tau * (n / n.sum()).log()


# --- the meta-net -------------------------------------------------------------------------------
def mlp(in_dim: int, hidden: int, out_dim: int, depth: int, last_bias: float) -> nn.Sequential:
    """`depth` Linear layers with ReLU between: weights Xavier-normal, biases 0, last bias
    `last_bias` (the official initialisation)."""
    if depth < 1:
        raise ValueError(f"mlp_depth must be at least 1, got {depth}")
    dims = [in_dim] + [hidden] * (depth - 1) + [out_dim]
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(dims[i], dims[i + 1])
        nn.init.xavier_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()]
    layers.pop()
    nn.init.constant_(layers[-1].bias, last_bias)
    return nn.Sequential(*layers)


class LabelCorrector(nn.Module):
    """g(r | y): loss-rank bin → learned embedding → MLP → sigmoid, one column per class."""

    def __init__(self, bins: int, num_classes: int, hidden: int, depth: int, last_bias: float) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(bins, hidden))
        nn.init.xavier_uniform_(self.embedding)
        self.net = mlp(hidden, hidden, num_classes, depth, last_bias)

    def weight_table(self) -> Tensor:
        """g for every (bin, class): R × C in (0, 1)."""
        return torch.sigmoid(self.net(self.embedding))

    def forward(self, ranks: Tensor, labels: Tensor) -> Tensor:
        """g(r_i | y_i) per sample (N)."""
        return self.weight_table()[ranks, labels]


class MarginGenerator(nn.Module):
    """q = MLP(e) ∈ R^C, e a learned 1 × h input (or a fixed all-ones vector)."""

    def __init__(self, num_classes: int, hidden: int, depth: int, last_bias: float, learned_input: bool) -> None:
        super().__init__()
        if learned_input:
            self.input = nn.Parameter(torch.empty(1, hidden))
            nn.init.xavier_uniform_(self.input)
        else:
            self.register_buffer("input", torch.ones(1, hidden))
        self.net = mlp(hidden, hidden, num_classes, depth, last_bias)

    def forward(self) -> Tensor:
        return self.net(self.input).squeeze(0)


class DynamicMetaNet(nn.Module):
    """The label corrector and the margin generator, trained together by one optimiser."""

    def __init__(self, bins: int, num_classes: int, hp: dict[str, Any]) -> None:
        super().__init__()
        self.lc = LabelCorrector(bins, num_classes, hp["hidden"], hp["mlp_depth"], hp["lc_last_bias"])
        self.mg = MarginGenerator(num_classes, hp["hidden"], hp["mlp_depth"], hp["mg_last_bias"],
                                  hp["mg_input"] == "embedding")

    def corrected_labels(
        self, logits: Tensor, labels: Tensor, ranks: Tensor, sample: bool,
    ) -> tuple[Tensor, Tensor]:
        """(y*, g): y* = g·onehot(y) + (1 − g)·y', y' = a hard Gumbel sample of the detached
        logits if `sample`, else their softmax."""
        g = self.lc(ranks, labels)[:, None]
        z = logits.detach().float()
        prediction = hard_gumbel_sample(z) if sample else z.softmax(dim=1)
        given = F.one_hot(labels, z.shape[1]).float()
        return g * given + (1.0 - g) * prediction, g.squeeze(1)


# --- the method ---------------------------------------------------------------------------------
@METHODS.register("dynamic_loss", "Dynamic Loss: meta-learned label corrector + margins, no clean data")
class DynamicLoss(BilevelMethod):
    """Dynamic Loss on the bi-level core; `train_step` = warm-up step or virtual → meta → actual."""

    display_name = "Dynamic Loss"
    colour = "#d62728"
    order = 90
    family = "meta, no clean data"
    uses_indices: ClassVar[bool] = True
    trains_through_training_forward: ClassVar[bool] = True  # its virtual (weak-view) forward
    defaults: ClassVar[dict[str, Any]] = {
        "warmup_epochs": 5,  # DL Table 1 (CIFAR)
        "lc_warmup_iters": 2000,  # global iterations of LC warm-up [code]
        "rank_bins": 100,  # R, DL Table 1 CIFAR-10 (CIFAR-100: DYNAMIC_LOSS_CIFAR100)
        "hidden": 64,
        # Paper §3.2/§3.3: "two-layer" MLPs and q = G(1); code and Table 9f: 3 Linear layers and
        # a learned input embedding for MG. Spec §10.1 follows the code; the paper's form is
        # mlp_depth=2, mg_input="ones".
        "mlp_depth": 3,
        "mg_input": "embedding",
        "lc_last_bias": 3.98,
        "mg_last_bias": 1.0,
        # M0, M1 as in the code (M1 relative to the primary set); the paper's Table 1 M1 = 0.25
        # is the product M0·M1.
        "primary_ratio": 0.5,
        "meta_ratio": 0.5,
        "meta_batch_size": None,  # None: the run's batch size (the whole meta set if smaller)
        "meta_lr": 3e-3,
        "meta_weight_decay": 0.0,
        "finetune_meta_set": True,
        "base_margin": "none",
        "base_margin_tau": 1.0,
        "base_margin_in_warmup": True,  # the paper is silent; the base loss of a variant throughout
        "bn": "scratch",
        # how the meta gradient is computed (methods.bilevel): exact either way, "jvp" cheaper
        "meta_grad": "jvp",
    }
    hparam_rules: ClassVar[Mapping[str, Rule]] = {
        **BilevelMethod.hparam_rules,
        "warmup_epochs": Range(ge=0),
        "lc_warmup_iters": Range(ge=0),
        "rank_bins": Range(ge=1),
        "hidden": Range(ge=1),
        "mlp_depth": Range(ge=1),
        "mg_input": MG_INPUTS,
        "primary_ratio": Range(gt=0, le=1),
        "meta_ratio": Range(gt=0, le=1),
        "meta_batch_size": Range(ge=1, integer=True),
        "meta_lr": Range(gt=0),
        "meta_weight_decay": Range(ge=0),
        "base_margin": BASE_MARGINS,
        "base_margin_tau": Range(ge=0),
        "meta_grad": META_GRADS,
    }
    dataset_defaults = {"cifar100": DYNAMIC_LOSS_CIFAR100}
    # The paper runs one fixed set for all its datasets (Table 1, §4.1) and reports no sweep; the search covers the
    # hierarchical sampling fractions around it. warmup_epochs is not searched (check_run). Meta set per class:
    # int(M0·n_min·M1) >= 1 needs n_min >= 16 at the lowest corner (0.25·0.25), 4 at the default.
    search_space: ClassVar[Mapping[str, Dim]] = {
        # M0, the primary set's fraction of n_min: 0.5 in paper and code (Table 1; methods.md §10.4)
        "primary_ratio": Uniform(0.25, 0.75),
        # M1 relative to the primary set: 0.5 in the code, i.e. the paper's 0.25 of n_min (Table 1; methods.md §10.4)
        "meta_ratio": Uniform(0.25, 0.75),
        # DL's classifier: 0.1 on CIFAR, 0.02 on WebVision and Animal-10N (Table 1; methods.md §10.4)
        "lr": LogUniform(0.01, 0.2),
        # DL's classifier: 5e-4 on CIFAR, 1e-4 on WebVision and ImageNet-LT (Table 1)
        "weight_decay": LogUniform(1e-4, 1e-3),
    }
    short_run = {"warmup_epochs": 1}
    main_phase_from = "warmup_epochs"
    state_attrs = (*BilevelMethod.state_attrs, "metanet", "meta_optimizer", "ranks", "primary_indices",
                   "meta_indices", "global_step")

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        hparams = self.hp
        if ctx.train_images is None:
            raise ValueError("DynamicLoss needs the training images (ctx.train_images)")
        n_min = min(ctx.noisy_counts)
        self.n_primary = int(hparams["primary_ratio"] * n_min)
        self.n_meta = int(hparams["primary_ratio"] * n_min * hparams["meta_ratio"])
        if self.n_meta < 1:
            raise ValueError(f"DynamicLoss: the smallest noisy class has {n_min} samples, which gives "
                             "an empty meta set; raise primary_ratio/meta_ratio")
        self.metanet = DynamicMetaNet(hparams["rank_bins"], ctx.num_classes, hparams).to(ctx.device)
        self.meta_optimizer = torch.optim.Adam(self.metanet.parameters(), lr=hparams["meta_lr"],
                                               weight_decay=hparams["meta_weight_decay"])
        self.base = base_margin(hparams["base_margin"], ctx.noisy_counts, hparams["base_margin_tau"], ctx.device)
        n = len(ctx.train_y)
        self.ranks = torch.zeros(n, dtype=torch.long, device=ctx.device)
        self.primary_indices = torch.zeros(0, dtype=torch.long, device=ctx.device)
        self.meta_indices = torch.zeros(0, dtype=torch.long, device=ctx.device)
        self.meta_sampler: MetaSampler | None = None
        self.global_step = 0
        # per-epoch diagnostics: argmax of y* per sample (−1: not seen), Σ g and the count
        self._corrected = torch.full((n,), -1, dtype=torch.long, device=ctx.device)
        self._g_sum = torch.zeros((), device=ctx.device)
        self._g_count = torch.zeros((), device=ctx.device)

    # --- epoch structure -----------------------------------------------------------------
    def in_warmup(self, epoch: int) -> bool:
        return epoch < self.hp["warmup_epochs"]

    def on_epoch_start(self, epoch: int) -> None:
        """Rank every sample within its noisy class; after warm-up draw this epoch's meta set."""
        warm = self.in_warmup(epoch)
        self.primary_indices = self.meta_indices = self.meta_indices[:0]
        self.meta_sampler = None
        if warm and self.global_step >= self.hp["lc_warmup_iters"]:
            return  # the bins are unused until the meta phase
        losses = self.training_losses()
        y = self.ctx.train_y
        self.ranks = loss_rank_bins(losses, y, self.ctx.num_classes, self.hp["rank_bins"])
        if warm:
            return
        self.primary_indices, self.meta_indices = hierarchical_sample(
            losses, y, self.ctx.num_classes, self.n_primary, self.n_meta, self.ctx.generator)
        self.meta_sampler = MetaSampler(self.ctx.train_images.subset(self.meta_indices), y[self.meta_indices],
                                        self.meta_batch_size(), self.ctx.generator, mode="cycle")

    def epoch_train_indices(self, epoch: int) -> Tensor | None:
        """All training samples except this epoch's meta set (None in warm-up: all)."""
        if self.in_warmup(epoch):
            return None
        keep = torch.ones(len(self.ctx.train_y), dtype=torch.bool, device=self.ctx.device)
        keep[self.meta_indices] = False
        return torch.nonzero(keep).squeeze(1)

    def train_epoch(self, epoch: int, batches: Iterable[Batch]) -> Tensor:
        """The batches, then (after warm-up) one fine-tune pass over the meta set."""
        loss = super().train_epoch(epoch, batches)
        if not self.in_warmup(epoch) and self.hp["finetune_meta_set"]:
            self.finetune_meta_set()
        self.record_diagnostics(epoch)
        return loss

    @torch.no_grad()
    def training_losses(self) -> Tensor:
        """Per-sample CE against the given labels, eval mode, un-augmented images (fp32)."""
        was_training = self.model.training
        self.model.eval()
        y = self.ctx.train_y
        losses = torch.empty(len(y), dtype=torch.float32, device=self.ctx.device)
        for start, x in self.ctx.train_images.in_order(RANK_BATCH):
            part = slice(start, start + len(x))
            logits = self.model(x)
            losses[part] = F.cross_entropy(logits.float(), y[part], reduction="none")
        self.model.train(was_training)
        return losses

    # --- one iteration -------------------------------------------------------------------
    def train_step(self, batch: Batch, epoch: int) -> Tensor:
        if batch.index is None:
            raise ValueError("DynamicLoss needs batch indices")
        loss = self.warmup_step(batch) if self.in_warmup(epoch) else self.meta_train_step(batch)
        self.global_step += 1
        return loss

    def warmup_step(self, batch: Batch) -> Tensor:
        """Plain CE on the strong batch; while global step < lc_warmup_iters, one LC step on the
        weak view's no-grad logits at the same θ (taken before the SGD step, as officially)."""
        logits = self.model(batch.x)
        if self.hp["base_margin_in_warmup"]:
            logits = logits + self.base
        loss = F.cross_entropy(logits.float(), batch.y)
        lc_warmup = self.global_step < self.hp["lc_warmup_iters"]
        if lc_warmup:
            with torch.no_grad():
                weak_logits = functional_forward(self.model, self.params, self.weak_view(batch.index),
                                                 self.hp["bn"])
        self.sgd_step(loss)
        if lc_warmup:
            self.label_corrector_warmup(batch, weak_logits)
        return loss.detach()

    def label_corrector_warmup(self, batch: Batch, weak_logits: Tensor) -> None:
        """Train the LC to reproduce the given labels from softmax predictions:
        −Σ onehot(y)·log(y* + 1e-8), one Adam step."""
        y_star, _ = self.metanet.corrected_labels(weak_logits, batch.y, self.ranks[batch.index], sample=False)
        given = F.one_hot(batch.y, self.ctx.num_classes).float()
        loss = -(given * (y_star + 1e-8).log()).sum(dim=1).mean()
        self.meta_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.meta_optimizer.step()

    def meta_train_step(self, batch: Batch) -> Tensor:
        step, weak_logits, _ = self.virtual_step(batch)
        self.meta_step(step)
        return self.actual_step(batch, weak_logits)

    def virtual_step(self, batch: Batch) -> tuple[LookAhead, Tensor, Tensor]:
        """θ̂(LC, MG) after a differentiable copy of the real SGD step on the weak view.

        Returns (the look-ahead, the weak logits at θ, the virtual loss)."""
        x = self.weak_view(batch.index)
        if self._reusable is not None:  # jvp route, bn="scratch": the tangent pass reuses this forward
            logits = self.training_forward(x, scratch_bn=True)
        else:
            logits = functional_forward(self.model, self.params, x, self.hp["bn"])
        y_star, _ = self.metanet.corrected_labels(logits, batch.y, self.ranks[batch.index], sample=True)
        loss = soft_cross_entropy(logits + self.margin(), y_star).mean()
        step = self.look_ahead(loss, logits, x, rule=VirtualSGD.like(self.optimizer),
                               buffers=momentum_buffers(self.optimizer, self.params))
        return step, logits, loss

    def meta_step(self, step: LookAhead) -> None:
        """Mean CE of θ̂ on a strong meta batch (given labels), to LC and MG; one Adam step."""
        assert self.meta_sampler is not None, "on_epoch_start draws the meta set"
        meta_loss = self.meta_loss(step.fast, *self.meta_sampler.next())
        self.meta_update(meta_loss, [(self.meta_optimizer, self.metanet.parameters())], step=step)

    def actual_step(self, batch: Batch, weak_logits: Tensor) -> Tensor:
        """The real SGD step on CE_soft(y*, z + q), y* and q from the updated meta-net."""
        with torch.no_grad():
            y_star, g = self.metanet.corrected_labels(weak_logits, batch.y, self.ranks[batch.index], sample=True)
            margin = self.margin()
        loss = soft_cross_entropy(self.model(batch.x) + margin, y_star).mean()
        self.sgd_step(loss)
        self.track(batch.index, y_star, g)
        return loss.detach()

    def finetune_meta_set(self) -> None:
        """One pass over the meta set (strong view, fresh order, meta batches): CE(onehot(y), z + q)."""
        index = self.meta_indices[torch.randperm(len(self.meta_indices), generator=self.ctx.generator)
                                  .to(self.ctx.device)]
        with torch.no_grad():
            margin = self.margin()
        size = self.meta_batch_size()  # the official pass iterates the meta loader (dynamic_epochbased_runner.py)
        for start in range(0, len(index), size):
            part = index[start : start + size]
            x = self.ctx.train_images.batch(part, train=True, generator=self.ctx.generator)
            self.sgd_step(F.cross_entropy((self.model(x) + margin).float(), self.ctx.train_y[part]))
            self.global_step += 1

    # --- helpers -------------------------------------------------------------------------
    def meta_batch_size(self) -> int:
        """Batch size of the meta set's loader (meta step and fine-tune pass)."""
        return self.hp["meta_batch_size"] or self.ctx.batch_size

    def margin(self) -> Tensor:
        """q + the variant's fixed base margin (C), added to the logits in training only."""
        return self.metanet.mg() + self.base

    def weak_view(self, index: Tensor) -> Tensor:
        """The un-augmented, normalised images of training samples `index`."""
        return self.ctx.train_images.batch(index, train=False)

    def track(self, index: Tensor, y_star: Tensor, g: Tensor) -> None:
        """Remember argmax y* per sample and accumulate g of an actual step for the diagnostics."""
        self._corrected[index] = y_star.argmax(dim=1)
        self._g_sum += g.sum()
        self._g_count += len(g)

    def record_diagnostics(self, epoch: int) -> None:
        """The meta-set size; in meta-phase epochs also the label-correction accuracy (% of argmax
        y* equal to the clean label, over the samples an actual step trained on; NaN if none) and
        mean g. Warm-up epochs train on the given labels, so they record no y* statistics."""
        d = self.ctx.diagnostics
        d.record("meta_set_size", len(self.meta_indices))
        if not self.in_warmup(epoch):
            seen = torch.nonzero(self._corrected >= 0).squeeze(1)
            d.record("lc_label_acc", d.label_accuracy(seen, self._corrected[seen]))
            count = float(self._g_count.item())
            d.record("lc_weight_mean", float(self._g_sum.item()) / count if count else math.nan)
        self._corrected.fill_(-1)
        self._g_sum.zero_()
        self._g_count.zero_()

    def modules(self) -> list[nn.Module]:
        return [self.model, self.metanet]


@METHODS.register("dynamic_loss_bs", "Dynamic Loss + Balanced Softmax base margin log n_j (DL Table 7)")
class DynamicLossBS(DynamicLoss):
    display_name = "Dynamic Loss + BS"
    colour = "#7f0000"
    order = 100
    defaults: ClassVar[dict[str, Any]] = {**DynamicLoss.defaults, "base_margin": "balanced_softmax"}


@METHODS.register("dynamic_loss_la", "Dynamic Loss + logit-adjustment margin tau*log prior (DL Table 7)")
class DynamicLossLA(DynamicLoss):
    """Dynamic Loss + Logit Adjustment. At its default τ = 1 its margin log(n_j / N) is the
    Balanced Softmax one shifted by the constant −log N, which softmax ignores: it trains as
    `dynamic_loss_bs` (up to rounding). So it is registered but left out of the default method
    list (`in_default_grids = False`); run it by name with ``--hp base_margin_tau=...`` (τ ≠ 1)
    to separate it."""

    display_name = "Dynamic Loss + LA"
    colour = "#000080"
    order = 110
    in_default_grids: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {**DynamicLoss.defaults, "base_margin": "logit_adjustment"}
