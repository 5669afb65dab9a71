"""FSR, Fast Sample Re-weighting without reward data (Zhang & Pfister, ICCV 2021; methods.md §8).

No clean data. A dictionary R of training samples, class-balanced by *noisy* label, stands in
for the reward (meta) set. Per iteration, on the bi-level core of `methods.bilevel`:

1. cost c_i of each training sample at θ (soft CE on the mixup batch when mixup is on, else
   CE with label smoothing); one forward of the backbone with grad;
2. virtual step on the final FC only (feature sharing, paper §4.2): initial weights ε = 1/b,
   look-ahead loss Σ ε_i c_i + the L2 term, θ̂_FC = θ_FC − η·(g + μ·m) with the real
   optimiser's momentum buffer m (stop-grad), η = `meta_stepsize`, μ = `meta_momentum`;
3. meta loss: mean CE of θ̂ on a class-balanced probe batch of q dictionary images (+ L2
   term of θ̂_FC); ∂L/∂ε flows back through the FC only, so it is FC-sized matrix work;
4. weights w = max(0, −∂L/∂ε) (noise) or w_raw − min(w_raw) + 1/b (LT), normalised by
   Σ w + 1e-5; before `meta_start_epoch` they are replaced by 1/b (the meta computation
   still runs, as in the code, so the warm-up costs the same);
5. actual step: Σ w_i c_i (+ p·momentum re-labelling loss) with the real momentum SGD;
6. meta-margin pusher P_i = c_i − c_i^meta (c^meta: CE of the unmixed image under θ̂), running
   score r_i ← λ r_i + (1 − λ)(−P_i) (at λ = 1 the code accumulates, r_i ← r_i − P_i); after
   every epoch the dictionary becomes, per class, the |R|/C samples with the lowest r (largest
   momentum meta-margin).

BatchNorm in the meta forward: the code forwards the concatenation [probe; unmixed training
images] through the look-ahead network in training mode, so the probe shares BN batch
statistics with the training images, and that forward does not update the moving averages.
Because only the FC moves, the backbone part of that forward is at θ and has no second-order
path: here it is one no-grad, train-mode forward of `model.features` on the concatenation
(running statistics go to scratch copies with ``bn="scratch"``), and the look-ahead FC is
applied to its output. That is exactly the code's computation, with no backbone graph; the
training forward (with grad, on the mixed batch) is shared by the virtual and actual steps.
The no-grad forward runs first, so its activations are freed before the training graph is
built (peak memory ≈ a CE step's). Its cost, a no-grad forward of q + b = 300 images, is what
FSR adds to a CE step: on CPU about 1.1 CE steps at b = 100 (performance.md §2.4, §5).

Dictionary details: it stores sample indices, noisy labels and the augmented images, which
are frozen until the next refresh (the code re-reads them from a pass over the augmented data
stream). A class with fewer than |R|/C samples contributes all of them (the code's initial
fill samples such a class with replacement, i.e. duplicates); a class with fewer than q/C
dictionary entries is drawn with replacement for the probe batch (as in the code). Samples
never scored (not yet trained on) rank after scored ones at refresh (the code skips them).

Evaluation uses an exponential moving average of the weights by default (`eval_ema`), as the
code's evaluation does (see `FSR.__init__`); BN running statistics are the raw model's.

Defaults follow the CIFAR noise setting (paper Table 4, code flags); `FSR_LT` and
`FSR_LT_NOISE` below hold the other settings.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.core.errors import UsageError
from bench.core.hparams import Range, Rule
from bench.core.search import Dim, IntUniform, LogUniform, Uniform
from methods.base import Batch, MethodContext
from methods.bilevel import BilevelMethod, VirtualSGD, functional_forward, look_ahead, meta_gradients, momentum_buffers
from methods.registry import METHODS

WEIGHT_MODES = ("clip", "shift")

#: CIFAR long-tailed recognition, paper Table 6 "FSR-DF" (Table 4 row "CIFAR (Long-Tailed)",
#: `run_fsr_cifar_longtail.sh`): no mixup or re-labelling, label smoothing 0.1, weights
#: shifted instead of clipped, re-weighting deferred to epoch 160 of the 200-epoch schedule.
FSR_LT: dict[str, Any] = {
    "dictionary_size": 3000, "probe_size": 800, "weight_mode": "shift", "meta_start_epoch": 160,
    "mixup": False, "label_smoothing": 0.1, "relabel_weight": 0.0,
}
#: CIFAR-10 LT + uniform noise, paper Table 7 (Table 4 row "CIFAR (LT+noise)"): mixup and
#: re-labelling on, clipped weights, label smoothing 0.1, E = 160. |R| = 3k is the paper's;
#: the released script `run_fsr_cifar_longtail_noise.sh` uses 2000.
FSR_LT_NOISE: dict[str, Any] = {
    "dictionary_size": 3000, "probe_size": 200, "meta_start_epoch": 160, "label_smoothing": 0.1,
}


# --- per-sample pieces ---------------------------------------------------------------------
def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-sample −Σ_k t_k log softmax(z)_k in fp32 or wider (targets: N×C probabilities)."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)


def smoothed_one_hot(y: Tensor, num_classes: int, smoothing: float) -> Tensor:
    """One-hot labels with label smoothing: (1 − s)·onehot + s/C (TF's `label_smoothing`)."""
    t = torch.zeros(len(y), num_classes, device=y.device).scatter_(1, y[:, None], 1.0)  # no host sync
    return t * (1.0 - smoothing) + smoothing / num_classes if smoothing else t


def mixup(x: Tensor, targets: Tensor, beta: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The code's per-sample mixup: m = max(u^(1/β)/2, 1 − u^(1/β)/2), u ~ U(0, 1) (≈ Beta(β, β),
    folded to m ≥ 1/2), partner = a random permutation of the batch; images and targets mixed."""
    n = x.shape[0]
    u = torch.rand(n, generator=generator).to(x.device)
    m = u.pow(1.0 / beta) / 2
    m = torch.maximum(m, 1 - m)
    partner = torch.randperm(n, generator=generator).to(x.device)
    x_mix = x * m.view(-1, *([1] * (x.dim() - 1))) + x[partner] * (1 - m).view(-1, *([1] * (x.dim() - 1)))
    t_mix = targets * m[:, None] + targets[partner] * (1 - m[:, None])
    return x_mix, t_mix


def rms_normalize(v: Tensor) -> Tensor:
    """v / RMS(v) over the whole tensor (the code's `logit_norm`, 1e-8 inside the root)."""
    return v * torch.rsqrt(v.square().mean() + 1e-8)


def normalized_weights(grad_eps: Tensor, eps: Tensor, mode: str) -> Tensor:
    """Sample weights from ∂L_meta/∂ε (paper Eq. 3 with α = 1, then normalised).

    "clip" (noise): max(0, w_raw − ε) = max(0, −∂L/∂ε); "shift" (LT): w_raw − min(w_raw) + ε,
    with w_raw = ε − ∂L/∂ε and ε = 1/b. Then w / (Σ w + 1e-5)."""
    raw = eps - grad_eps
    if mode == "clip":
        w = (raw - eps).clamp_min(0.0)
    elif mode == "shift":
        w = raw - raw.min() + eps
    else:
        raise ValueError(f"weight_mode must be one of {WEIGHT_MODES}, got {mode!r}")
    return w / (w.sum() + 1e-5)


# --- the FC-only look-ahead ----------------------------------------------------------------
def fc_meta_gradient(
    fc: nn.Module, features: Tensor, targets: Tensor, eps: Tensor, probe_features: Tensor,
    probe_targets: Tensor, step_size: float, rule: VirtualSGD, buffers: dict[str, Tensor] | None = None,
    meta_l2: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """∂L_meta/∂ε through a virtual step of the FC alone; returns (grad_ε, θ̂_FC, L_meta).

    `features` and `probe_features` are constants (shared backbone features). The look-ahead
    loss is Σ ε_i c_i with c the soft CE against `targets`; θ̂ = θ − step_size·rule(g)
    (the rule's weight decay is the L2 term's gradient); L_meta = mean soft CE of θ̂ on the
    probe plus meta_l2/2·‖θ̂‖² (TF's `l2_loss`)."""
    params = dict(fc.named_parameters())
    costs = soft_cross_entropy(functional_forward(fc, params, features), targets)
    fast, _ = look_ahead(params, (eps * costs).sum(), step_size, rule=rule, buffers=buffers)
    meta_loss = soft_cross_entropy(functional_forward(fc, fast, probe_features), probe_targets).mean()
    if meta_l2:
        meta_loss = meta_loss + meta_l2 / 2 * sum(w.square().sum() for w in fast.values())
    (grad_eps,) = meta_gradients(meta_loss, [eps])
    return grad_eps, {k: v.detach() for k, v in fast.items()}, meta_loss.detach()


# --- the dictionary ------------------------------------------------------------------------
def lowest_per_class(labels: Tensor, scores: Tensor, per_class: int, num_classes: int) -> Tensor:
    """Indices of the `per_class` lowest-scored entries of each class (all of a smaller class),
    grouped by class in increasing class order; ties keep index order."""
    order = torch.argsort(scores, stable=True)
    order = order[torch.argsort(labels[order], stable=True)]
    counts = torch.bincount(labels, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(order), device=labels.device) - starts[labels[order]]
    return order[rank < per_class]


class Dictionary:
    """R: sample indices, noisy labels and frozen augmented images, grouped by class."""

    def __init__(self, num_classes: int, capacity: int, probe_size: int) -> None:
        self.num_classes = num_classes
        self.per_class = max(1, capacity // num_classes)
        self.probe_per_class = max(1, probe_size // num_classes)
        self.index = self.labels = self.images = torch.empty(0)

    def fill(self, index: Tensor, labels: Tensor, images: Tensor) -> None:
        """Replace the contents (entries grouped by class) and precompute the probe tables."""
        self.index, self.labels, self.images = index, labels, images
        counts = torch.bincount(labels, minlength=self.num_classes)
        starts = torch.cumsum(counts, 0) - counts
        nonempty = torch.nonzero(counts).squeeze(1)
        self._counts, self._starts = counts[nonempty], starts[nonempty]
        self._width = int(counts.max())  # one host sync per refresh

    def probe(self, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A class-balanced probe batch of q/C images per class: without replacement, or with
        replacement for a class that holds fewer than q/C entries (as the code does)."""
        m, device = self.probe_per_class, self.labels.device
        n_cls = len(self._counts)
        keys = torch.rand(n_cls, self._width, generator=generator).to(device)
        col = torch.arange(self._width, device=device)
        keys = keys.masked_fill(col[None, :] >= self._counts[:, None], 2.0)
        without = keys.argsort(dim=1)[:, :m]
        if without.shape[1] < m:  # every class is short: only the with-replacement draw is used
            without = F.pad(without, (0, m - without.shape[1]))
        draw = torch.rand(n_cls, m, generator=generator).to(device)
        with_repl = (draw * self._counts[:, None]).long().minimum(self._counts[:, None] - 1)
        choose = torch.where((self._counts >= m)[:, None], without, with_repl)
        pos = (self._starts[:, None] + choose).flatten()
        return self.images[pos], self.labels[pos]


class _FeatureView(nn.Module):
    """`net.features` as a module's forward, so the core's `functional_forward` can run it."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.features(x)


@METHODS.register("fsr", "Fast Sample Re-weighting: FC-only look-ahead on a self-built dictionary")
class FSR(BilevelMethod):
    """FSR with the meta-margin dictionary, meta momentum, momentum re-labelling and mixup."""

    display_name = "FSR"
    colour = "#e377c2"
    order = 80
    family = "meta, no clean data"
    uses_indices: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "dictionary_size": 2000,      # |R| (Table 4; code `queue_capacity`)
        "probe_size": 200,            # q (Table 4; code `queue_bs`)
        "meta_stepsize": 0.1,         # η of the virtual step (Table 4; code `meta_stepsize`)
        "meta_momentum": 0.9,         # g ← g + 0.9·m in the virtual step (code `meta_momentum`)
        "pusher_momentum": 0.9,       # λ of the running meta-margin (Table 4; code `queue_beta`)
        "weight_mode": "clip",        # "clip" (noise) or "shift" (LT), §8.1 step 4
        "meta_start_epoch": 20,       # E, warm-up with uniform weights (code default)
        "mixup": True,
        "mixup_beta": 0.5,            # m = max(u²/2, 1 − u²/2) at 0.5 (code `MixMode`)
        "label_smoothing": 0.0,
        "relabel_weight": 2.0,        # p of the re-labelling loss; 0 turns re-labelling off
        "relabel_momentum": 0.1,      # β (code: gamma of `use_pseudo_loss`)
        "relabel_temperature": 1.0,   # T
        "meta_l2": True,              # the network's L2 term in look-ahead and meta loss (code)
        "bn": "scratch",              # meta forward leaves the real BN running statistics alone
        "eval_ema": True,             # evaluate an EMA of the weights (code `use_ema`, see below)
        "ema_decay": 0.999,
    }
    hparam_rules: ClassVar[Mapping[str, Rule]] = {
        **BilevelMethod.hparam_rules,
        "dictionary_size": Range(ge=1),
        "probe_size": Range(ge=1),
        "meta_stepsize": Range(gt=0),
        "meta_momentum": Range(ge=0, lt=1),
        "pusher_momentum": Range(ge=0, le=1),
        "weight_mode": WEIGHT_MODES,
        "meta_start_epoch": Range(ge=0),
        "mixup_beta": Range(gt=0),
        "label_smoothing": Range(ge=0, lt=1),
        "relabel_weight": Range(ge=0),
        "relabel_momentum": Range(ge=0, le=1),
        "relabel_temperature": Range(gt=0),
        "ema_decay": Range(ge=0, lt=1),
    }
    # meta_start_epoch (E: 20 noise, 160 LT) is set per setting too, but not searched: it decides whether a run
    # reaches the re-weighting phase (check_run). The smallest |R| is above every preset's q (≤ 800), so
    # probe_size <= dictionary_size holds at every point
    search_space: ClassVar[Mapping[str, Dim]] = {
        # |R|: 2k (CIFAR noise), 3k (LT, LT+noise), 5k (WebVision) in Table 4; swept in Fig. 7 (methods.md §8.2)
        "dictionary_size": IntUniform(1000, 5000),
        # β, the re-labelling momentum: 0.1 (Table 4), swept over 0–0.8 in Table 4's bottom panel
        "relabel_momentum": Uniform(0.0, 0.8),
        # FSR's CIFAR recipes: 0.1 (Table 4 settings; methods.md §8.2)
        "lr": LogUniform(0.01, 0.2),
        # FSR's CIFAR recipe: 5e-4, the WRN L2 term (methods.md §8.2)
        "weight_decay": LogUniform(1e-4, 1e-3),
    }
    short_run = {"meta_start_epoch": 1}
    main_phase_from = "meta_start_epoch"
    state_attrs = (*BilevelMethod.state_attrs, "scores", "scored", "ema_logits", "ema_params", "updates",
                   "steps_since_refresh")

    @classmethod
    def check_run(cls, hparams: Mapping[str, Any], epochs: int) -> None:
        """Also refuse a probe batch larger than the dictionary (the code's `Queue` asserts
        capacity ≥ batch size): every probe would repeat dictionary entries."""
        super().check_run(hparams, epochs)
        if hparams["probe_size"] > hparams["dictionary_size"]:
            size = hparams["dictionary_size"]
            raise UsageError(f"method 'fsr': probe_size={hparams['probe_size']} > dictionary_size={size}, so every "
                             f"probe batch repeats dictionary entries; use --hp probe_size=N with N <= {size} "
                             f"or a larger dictionary_size")

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        hparams = self.hp
        if ctx.train_images is None:
            raise ValueError("FSR builds its dictionary from the training images (ctx.train_images)")
        n, c, dev = len(ctx.train_y), ctx.num_classes, ctx.device
        self.fc_params = dict(self.model.fc.named_parameters())
        self.features_view = _FeatureView(self.model)
        self.scores = torch.zeros(n, device=dev)                    # running −meta-margin r_i
        self.scored = torch.zeros(n, dtype=torch.bool, device=dev)  # trained on at least once
        self.ema_logits = torch.zeros(n, c, device=dev) if hparams["relabel_weight"] else None
        # The code evaluates with `ExponentialMovingAverage(0.999, global_step)` of the trainable
        # variables when `use_ema` (default True): `BaseModel.eval_step`, which FSR inherits via
        # L2R, swaps the averages in through a custom getter (BN moving statistics stay raw).
        self.ema_params = (
            {k: p.detach().clone() for k, p in self.model.named_parameters()} if hparams["eval_ema"] else None
        )
        self.updates = 0
        self.steps_since_refresh = 0
        self.dictionary = Dictionary(c, hparams["dictionary_size"], hparams["probe_size"])
        # initial R: a class-balanced random sample of the training set by noisy label
        keys = torch.rand(n, generator=ctx.generator).to(dev)
        self._fill_dictionary(lowest_per_class(ctx.train_y, keys, self.dictionary.per_class, c))
        self._meta_losses: list[Tensor] = []
        self._zero_fractions: list[Tensor] = []  # of the applied weights only

    # --- per epoch -----------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """Refresh R after every trained epoch: per class the lowest running scores."""
        if self.steps_since_refresh == 0:
            return
        keys = torch.where(self.scored, self.scores, torch.full_like(self.scores, float("inf")))
        self._fill_dictionary(lowest_per_class(self.ctx.train_y, keys, self.dictionary.per_class,
                                               self.ctx.num_classes))
        self.steps_since_refresh = 0

    def _fill_dictionary(self, index: Tensor) -> None:
        images = self.ctx.train_images.batch(index, train=True, generator=self.ctx.generator)
        self.dictionary.fill(index, self.ctx.train_y[index], images)

    def train_epoch(self, epoch: int, batches: Any) -> Tensor:
        """One epoch; diagnostics describe what was applied: weight statistics and the pseudo
        labels' accuracy only for epochs that used them (from `meta_start_epoch`), the meta loss
        for every epoch (the meta computation always runs)."""
        self._meta_losses, self._zero_fractions = [], []
        loss = super().train_epoch(epoch, batches)
        diag = self.ctx.diagnostics
        diag.record("dict_purity", diag.label_accuracy(self.dictionary.index, self.dictionary.labels))
        if self._meta_losses:
            diag.record("meta_loss", torch.stack(self._meta_losses).mean().item())
        if self._zero_fractions:
            diag.record("zero_weight_pct", 100.0 * torch.stack(self._zero_fractions).mean().item())
        if self.ema_logits is not None and epoch >= self.hp["meta_start_epoch"]:  # pseudo labels applied
            index = torch.arange(len(self.ctx.train_y), device=self.ctx.device)
            diag.record("relabel_acc", diag.label_accuracy(index, self.ema_logits.argmax(1)))
        return loss

    # --- per iteration -------------------------------------------------------------------
    def train_step(self, batch: Batch, epoch: int) -> Tensor:
        hp, c = self.hp, self.ctx.num_classes
        b = len(batch.y)
        index = batch.index.to(self.ctx.device)
        targets = smoothed_one_hot(batch.y, c, 0.0 if hp["mixup"] else hp["label_smoothing"])
        x = batch.x
        if hp["mixup"]:  # the code's mixup ignores label smoothing for c_i
            x, targets = mixup(batch.x, targets, hp["mixup_beta"], self.ctx.generator)
        probe_x, probe_y = self.dictionary.probe(self.ctx.generator)
        # the look-ahead network's backbone is θ's: [probe; unmixed batch] through it without
        # grad, sharing BN batch statistics (see the module docstring). It runs before the
        # training forward so that its buffers are freed before that graph is built.
        with torch.no_grad():
            self.features_view.training = self.model.training
            shared = functional_forward(self.features_view, {}, torch.cat([probe_x, batch.x]), hp["bn"])
        probe_features, batch_features = shared.split([len(probe_y), b])
        features = self.model.features(x)  # the one forward with grad, shared by all steps
        logits = self.model.fc(features)
        costs = soft_cross_entropy(logits, targets)

        meta_weights, fast_fc, meta_loss = self._meta_weights(features.detach(), targets, probe_features, probe_y)
        active = epoch >= hp["meta_start_epoch"]
        weights = meta_weights if active else torch.full_like(meta_weights, 1.0 / b)

        loss = (weights * costs).sum()
        if self.ema_logits is not None:
            loss = loss + self._relabel_loss(logits, index, active)
        self.sgd_step(loss)

        self._update_scores(index, costs.detach(), batch_features, fast_fc, batch.y)
        if self.ema_params is not None:
            self._update_weight_ema()
        self._meta_losses.append(meta_loss)
        if active:  # before meta start the uniform 1/b was applied: nothing to describe
            self._zero_fractions.append((weights <= 0).float().mean())
        return loss.detach()

    def _meta_weights(self, features: Tensor, targets: Tensor, probe_features: Tensor,
                      probe_y: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """(normalised weights, θ̂_FC, meta loss) of the FC-only look-ahead from ε = 1/b."""
        hp, b = self.hp, len(features)
        eps = torch.full((b,), 1.0 / b, device=features.device, requires_grad=True)
        wd = self.optimizer.param_groups[0].get("weight_decay", 0.0) if hp["meta_l2"] else 0.0
        grad_eps, fast_fc, meta_loss = fc_meta_gradient(
            self.model.fc, features, targets, eps, probe_features,
            smoothed_one_hot(probe_y, self.ctx.num_classes, hp["label_smoothing"]), hp["meta_stepsize"],
            VirtualSGD(momentum=hp["meta_momentum"], weight_decay=wd),
            momentum_buffers(self.optimizer, self.fc_params), meta_l2=wd,
        )
        return normalized_weights(grad_eps, eps.detach(), hp["weight_mode"]), fast_fc, meta_loss

    def _relabel_loss(self, logits: Tensor, index: Tensor, active: bool) -> Tensor:
        """p · mean CE(softmax(rms(e_i)/T), z_i); e_i ← β·rms(e_i) + (1 − β)·z_i every step.

        As in the code, z are the logits of the (mixed) training forward: the paper says mixup
        is applied to the weighted term only, the code feeds the same mixed batch to both."""
        hp = self.hp
        ema = rms_normalize(self.ema_logits[index])
        beta = hp["relabel_momentum"]
        self.ema_logits[index] = beta * ema + (1 - beta) * logits.detach().float()
        if not active:
            return logits.new_zeros(())
        pseudo = F.softmax(ema / hp["relabel_temperature"], dim=1)
        return hp["relabel_weight"] * soft_cross_entropy(logits, pseudo).mean()

    @torch.no_grad()
    def _update_scores(self, index: Tensor, costs: Tensor, batch_features: Tensor, fast_fc: dict[str, Tensor],
                       y: Tensor) -> None:
        """r_i ← λ r_i + (1 − λ)(−P_i), P_i = c_i − c_i^meta (c^meta: one-hot CE of the unmixed
        image under θ̂, from the shared meta forward)."""
        meta_logits = functional_forward(self.model.fc, fast_fc, batch_features)
        margin = costs - F.cross_entropy(meta_logits.float(), y, reduction="none")
        lam = self.hp["pusher_momentum"]
        if lam >= 1:  # the code's `Queue._update_scores` accumulates instead: r_i ← r_i + λ(−P_i)
            self.scores[index] += lam * (-margin)
        else:
            self.scores[index] = lam * self.scores[index] + (1 - lam) * (-margin)
        self.scored[index] = True
        self.steps_since_refresh += 1

    @torch.no_grad()
    def _update_weight_ema(self) -> None:
        """TF's ExponentialMovingAverage(decay, num_updates): decay min(d, (1 + n)/(10 + n))."""
        decay = min(self.hp["ema_decay"], (1 + self.updates) / (10 + self.updates))
        params = dict(self.model.named_parameters())
        names = list(self.ema_params)
        torch._foreach_lerp_([self.ema_params[k] for k in names], [params[k] for k in names], 1.0 - decay)
        self.updates += 1

    # --- evaluation and state ------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        if self.ema_params is None:
            return self.model(x)
        return functional_forward(self.model, self.ema_params, x, "real")  # eval mode: no stat updates

    def state_dict(self) -> dict[str, Any]:
        d = self.dictionary
        return {**super().state_dict(), "dictionary": {"index": d.index, "labels": d.labels, "images": d.images}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        d = state["dictionary"]
        self.dictionary.fill(d["index"].to(self.ctx.device), d["labels"].to(self.ctx.device),
                             d["images"].to(self.ctx.device))
