"""DivideMix (Li, Socher, Hoi, ICLR 2020; methods.md §4, official `Train_cifar.py`).

Two networks A and B. Warm-up: W epochs of CE on all data (both nets, on the engine's
batches). Afterwards, at each epoch start, each net's per-sample CE on the un-augmented
training set is min-max normalised and a 2-component GMM gives every sample a clean
probability (posterior of the low-mean component). Net A then trains on the labeled/unlabeled
split made by B and vice versa, one MixMatch iteration per labeled batch of 64:
co-refined labeled targets, co-guessed unlabeled targets, sharpening, MixMatch, L_x + ramped
λ_u·L_u + uniform-prior regulariser. Prediction is the sum of both nets' logits.

`dividemix_bs` is the "DivideMix+Balanced-Softmax" baseline of Dynamic Loss Tables 2/3: the
supervised losses (warm-up CE and L_x) are Balanced Softmax, on logits + log(noisy class
counts); L_u and the uniform-prior regulariser R stay on the raw logits, like the co-guessed
targets L_u compares them with and the test-time prediction R is meant to balance. Adjusting the
logits of R as well corrects for the long tail twice: R then balances softmax(z + log π), i.e. it
pushes the raw prediction towards the inverse prior. Measured on a bias-only toy (`mixmatch_loss`
on logits = a learned bias b ∈ R^10; labeled targets the one-hot labels of CIFAR-10-LT ρ=100
(5000 … 50, 12,406 rows), unlabeled targets sharpened softmax(b); b starts at log π, as a CE
warm-up leaves it; 150 full-batch SGD steps, lr 0.1, momentum 0.9; test-time prior softmax(b)),
max/min of softmax(b), old (L_x, L_u and R all on adjusted logits) → now (L_x only):
λ_u = 0: 20.7 → 1.002; λ_u = 25: 326 → 1.002. Balanced Softmax alone (L_x only) has its optimum
at the balanced prior (ratio 1). tests/methods/test_dividemix.py runs this toy. Its L_u sees no
per-sample information, so there it is a pure sharpening force on the marginal: with λ_u ≥ 50, or
λ_u = 25 and a larger step (lr ≥ 0.3), the toy settles at other fixed points in both versions
(now: max/min ≈ 12–47); it shows where the prior enters, not how strong L_u may be.
On real runs this is not yet the whole story. Digits, MLP, sym 40 % noise, 15 epochs, 2 seeds,
max/min over classes of the mean test softmax: at ρ = 10 the old variant ≈ 4, this one 31–44
(plain DivideMix 24–26, Balanced Softmax 3–5); at ρ = 100 the old one reaches tail/head ≈ 1e5,
this one 30–64, and this one with λ_u = 0 ≈ 5 (with the best accuracy). So on real data L_u on
the raw logits, fed by mixed rows whose targets carry the head-heavy labeled set, still pulls
the prediction towards the head. Which placement of L_u is right needs a CIFAR-10-LT
measurement (unmeasured here); `lambda_u` is the knob meanwhile.

Harness choices (departures from the official loop, none changes the algorithm):
- warm-up trains both nets on the same engine batches (official: one shuffled pass per net);
  the warm-up batch size is the run's `batch_size` (official 128 = 2×64, the preset's business);
- after warm-up the engine's batches are not drawn (that would augment data nobody uses); the
  MixMatch iterations' timings replace the stream's `intervals`, and the LR is the one set at the
  epoch start (the official schedule is per-epoch anyway);
- the GMM gets a fixed `random_state` (official: unseeded) so runs are bit-identical, and is fitted
  on float64 losses (official: a float32 tensor; the posteriors differ by ~1e-8);
- an empty unlabeled set falls back to the whole training set, an empty labeled set skips the
  net's epoch (the official code would crash on either).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.mixture import GaussianMixture
from torch import nn

from bench.core.hparams import Range, Rule
from bench.core.search import Choice, Dim, LogUniform, Uniform
from methods.base import Batch, Batches, CostPart, EpochCostModel, Method, MethodContext
from methods.registry import METHODS

#: CIFAR-100 (DivideMix paper §4.1 / Train_cifar.py): 30 warm-up epochs instead of 10.
DIVIDEMIX_CIFAR100 = {"warmup_epochs": 30}
#: asymmetric noise on CIFAR-10 (official code, `--noise_mode asym`): negative-entropy penalty
#: during warm-up; λ_u = 0 for asym 40 % (methods.md §4.2, from the maintainers' issue threads).
DIVIDEMIX_ASYM = {"neg_entropy_warmup": True, "lambda_u": 0.0}
#: λ_u per setting (methods.md §4.2 table; paper App. B Table 7 / issue threads).
DIVIDEMIX_LAMBDA_U = {
    "cifar10": {"sym0.2": 0.0, "sym0.5": 25.0, "sym0.8": 25.0, "sym0.9": 50.0, "asym0.4": 0.0},
    "cifar100": {"sym0.2": 25.0, "sym0.5": 150.0, "sym0.8": 150.0, "sym0.9": 150.0},
}


# --- building blocks (pure functions, tested in tests/methods/test_dividemix.py) --------------
def gmm_clean_probability(losses: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Posterior of the low-mean component of a 2-component 1-D GMM fitted on `losses`.

    `losses` are expected min-max normalised (done by `normalise_losses`). Works for any N."""
    data = losses.detach().double().cpu().numpy().reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=seed)
    gmm.fit(data)
    clean = int(np.argmin(gmm.means_.reshape(-1)))
    return torch.from_numpy(gmm.predict_proba(data)[:, clean]).float()


def normalise_losses(losses: torch.Tensor) -> torch.Tensor:
    """Min-max normalise to [0, 1] (a constant vector becomes all zeros)."""
    low, high = losses.min(), losses.max()
    return (losses - low) / (high - low).clamp_min(1e-12)


def sharpen(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """p^(1/T), renormalised over classes."""
    p = p.pow(1.0 / temperature)
    return p / p.sum(dim=1, keepdim=True)


def co_refine(probs_x1: torch.Tensor, probs_x2: torch.Tensor, y_onehot: torch.Tensor,
              w: torch.Tensor, temperature: float) -> torch.Tensor:
    """Labeled targets: w·onehot(y) + (1−w)·mean net prediction, sharpened (eq. 3–4)."""
    p = (probs_x1 + probs_x2) / 2
    return sharpen(w[:, None] * y_onehot + (1 - w[:, None]) * p, temperature)


def co_guess(probs: Iterable[torch.Tensor], temperature: float) -> torch.Tensor:
    """Unlabeled targets: mean of both nets' predictions on both views, sharpened."""
    probs = list(probs)
    return sharpen(sum(probs) / len(probs), temperature)


def mixmatch(inputs: torch.Tensor, targets: torch.Tensor, lam: float,
             generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix every row with a row of one random permutation of the whole batch, λ' = max(λ, 1−λ)."""
    lam = max(lam, 1.0 - lam)
    perm = torch.randperm(len(inputs), generator=generator).to(inputs.device)
    return lam * inputs + (1 - lam) * inputs[perm], lam * targets + (1 - lam) * targets[perm]


def lambda_u_ramp(lambda_u: float, progress: float, warmup: int, length: float = 16.0) -> float:
    """λ_u · clip((progress − W) / length, 0, 1); progress = epoch + iteration / iterations."""
    return lambda_u * float(np.clip((progress - warmup) / length, 0.0, 1.0))


def uniform_prior_penalty(logits: torch.Tensor) -> torch.Tensor:
    """Σ_c π_c log(π_c / p̄_c) with π uniform and p̄ the batch-mean softmax."""
    mean_p = logits.softmax(dim=1).mean(dim=0)
    prior = torch.full_like(mean_p, 1.0 / len(mean_p))
    return (prior * (prior / mean_p).log()).sum()


def negative_entropy(logits: torch.Tensor) -> torch.Tensor:
    """mean over the batch of Σ_c p_c log p_c (the asym-noise warm-up penalty)."""
    log_p = logits.log_softmax(dim=1)
    return (log_p.exp() * log_p).sum(dim=1).mean()


def warmup_loss(logits: torch.Tensor, y: torch.Tensor, neg_entropy: bool,
                log_prior: torch.Tensor | None = None) -> torch.Tensor:
    """The warm-up loss of one batch: mean CE, plus `negative_entropy` when `neg_entropy` (the
    official asym-noise switch). `log_prior` (dividemix_bs): the CE is on `logits + log_prior`
    (Balanced Softmax); the confidence penalty stays on the raw logits, the test-time prediction."""
    adjusted = logits if log_prior is None else logits + log_prior
    loss = F.cross_entropy(adjusted, y)
    return loss + negative_entropy(logits) if neg_entropy else loss


def mixmatch_loss(logits: torch.Tensor, targets: torch.Tensor, n_x: int, lambda_u: float, uniform_prior: bool,
                  log_prior: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """DivideMix's loss on one mixed batch (rows [:n_x] labeled, the rest unlabeled), by part:
    `loss_x` = −mean Σ t̃ log softmax(z) on the labeled rows, `loss_u` = mean ‖softmax(z) − t̃‖²
    on the unlabeled rows (over samples and classes), `penalty` = R (uniform prior, batch-mean
    softmax over all rows; 0 when `uniform_prior` is off) and `loss` = loss_x + lambda_u·loss_u
    + penalty, with `lambda_u` the ramped weight λ_u(t).

    `log_prior` (dividemix_bs): L_x is on `logits + log_prior` (Balanced Softmax); L_u and R stay
    on the raw logits. The unlabeled targets are co-guessed from raw logits, and R asks the
    test-time (raw) prediction to be balanced: on adjusted logits, R would ask the *adjusted*
    prediction to be balanced, i.e. push the raw one towards the inverse prior (module docstring)."""
    logits_x = logits[:n_x] if log_prior is None else logits[:n_x] + log_prior
    loss_x = -(logits_x.log_softmax(1) * targets[:n_x]).sum(1).mean()
    loss_u = (logits[n_x:].softmax(1) - targets[n_x:]).pow(2).mean()
    penalty = uniform_prior_penalty(logits) if uniform_prior else logits.new_zeros(())
    return {"loss": loss_x + lambda_u * loss_u + penalty, "loss_x": loss_x, "loss_u": loss_u, "penalty": penalty}


# --- the method -------------------------------------------------------------------------------
@METHODS.register("dividemix", "two nets, GMM co-divide + MixMatch co-training (Li et al. 2020)")
class DivideMix(Method):
    """The official DivideMix (module docstring): CE warm-up (`warmup_loss`), per-epoch GMM
    co-divide, then MixMatch co-training with `mixmatch_loss` (L_x + λ_u(t)·L_u + R), every loss on
    the raw logits. R (`uniform_prior`) assumes balanced classes (methods.md §4.3)."""

    display_name = "DivideMix"
    colour = "#ff7f0e"
    order = 30
    family = "co-training"
    defaults: ClassVar[dict[str, Any]] = {
        "warmup_epochs": 10,  # CIFAR-10 [C][P]; DIVIDEMIX_CIFAR100 sets 30
        "lambda_u": 25.0,  # official code default [C]; per setting see DIVIDEMIX_LAMBDA_U
        "p_threshold": 0.5,  # τ [C][P]
        "temperature": 0.5,  # T [C][P]
        "alpha": 4.0,  # Beta(α, α) [C][P]
        "rampup_epochs": 16,  # λ_u linear ramp length [C]
        "mix_batch_size": 64,  # labeled batch = unlabeled batch = 64 [C]
        "uniform_prior": True,  # regulariser R [C][P]; switch off for long-tailed data (§4.3)
        "neg_entropy_warmup": False,  # asym noise only [C]
        "gmm_average_epochs": 1,  # 5 for 90 % noise [C]
        "gmm_seed": 0,  # the official GMM has no seed; fixed here for bit-identical runs
        "eval_batch_size": 1000,  # co-divide inference batch (no effect on the numbers)
    }
    hparam_rules: ClassVar[Mapping[str, Rule]] = {
        "warmup_epochs": Range(ge=0),
        "lambda_u": Range(ge=0),
        "p_threshold": Range(ge=0, le=1),
        "temperature": Range(gt=0),
        "alpha": Range(gt=0),
        "rampup_epochs": Range(gt=0),
        "mix_batch_size": Range(ge=1),
        "gmm_average_epochs": Range(ge=1),
        "gmm_seed": Range(ge=0),
        "eval_batch_size": Range(ge=1),
    }
    dataset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {"cifar100": DIVIDEMIX_CIFAR100}
    # warmup_epochs is also set per dataset by the paper (10 / 30) but is not searched: it decides whether a run
    # reaches the main phase (check_run)
    search_space: ClassVar[Mapping[str, Dim]] = {
        # the paper picks λ_u per setting from exactly this set (App. B Table 7; methods.md §4.2)
        "lambda_u": Choice((0.0, 25.0, 50.0, 150.0)),
        # τ: 0.5, and 0.6 at 90 % noise (methods.md §4.2); widened a little on both sides
        "p_threshold": Uniform(0.4, 0.7),
        # DivideMix's recipe is 0.02 (methods.md §4.2), inside the range shared with the other methods
        "lr": LogUniform(0.01, 0.2),
        # DivideMix's recipe: 5e-4 (methods.md §4.2)
        "weight_decay": LogUniform(1e-4, 1e-3),
    }
    short_run: ClassVar[Mapping[str, Any]] = {"warmup_epochs": 1}
    main_phase_from = "warmup_epochs"
    state_attrs = ("model", "optimizer", "model_b", "optimizer_b", "clean_prob", "loss_history")
    uses_indices = True
    # its epoch is its own co-divided MixMatch loop over the whole set (the official Clothing1M
    # script's 32k per-epoch draw is not reproduced)
    follows_epoch_subset = False
    logit_adjusted = False

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        if ctx.train_images is None:
            raise ValueError("DivideMix needs the training images (ctx.train_images)")
        self.model_b = ctx.build_model()
        self.optimizer_b = ctx.build_optimizer(self.model_b.parameters())
        counts = torch.tensor(ctx.noisy_counts, dtype=torch.float32, device=ctx.device)
        self.log_prior = counts.clamp_min(1.0).log()
        n = len(ctx.train_y)
        #: clean probability of every training sample from each net's GMM (A's, B's)
        self.clean_prob = [torch.ones(n), torch.ones(n)]
        #: normalised per-sample losses of recent epochs, per net (for gmm_average_epochs > 1)
        self.loss_history: list[list[torch.Tensor]] = [[], []]

    # --- engine hooks -----------------------------------------------------------------------
    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer, self.optimizer_b]

    def modules(self) -> list[nn.Module]:
        return [self.model, self.model_b]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.model_b(x)

    @torch.no_grad()
    def predict_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The ensemble (sum of logits) and each net's own logits."""
        a, b = self.model(x), self.model_b(x)
        return a + b, {"a": a, "b": b}

    def in_warmup(self, epoch: int) -> bool:
        return epoch < self.hp["warmup_epochs"]

    def on_epoch_start(self, epoch: int) -> None:
        """Co-divide: each net's GMM clean probabilities over the whole training set."""
        if self.in_warmup(epoch):
            return
        for k, net in enumerate(self.modules()):
            losses = normalise_losses(self.per_sample_losses(net))
            history = self.loss_history[k]
            history.append(losses)
            del history[: -self.hp["gmm_average_epochs"]]
            self.clean_prob[k] = gmm_clean_probability(torch.stack(history).mean(0), self.hp["gmm_seed"])
        self.record_split_diagnostics()

    def train_epoch(self, epoch: int, batches: Batches) -> torch.Tensor:
        """Warm-up: CE for both nets on the engine's batches. Afterwards the engine's batches are
        not drawn: each net runs |labeled set| / 64 MixMatch iterations on the other net's split,
        each timed as one iteration of the epoch (`batches.lap`)."""
        if self.in_warmup(epoch):
            return super().train_epoch(epoch, batches)
        total = torch.zeros((), device=self.ctx.device)
        steps = 0
        for k in (0, 1):
            for loss in self.train_net_epoch(k, epoch):
                total += loss
                steps += 1
                batches.lap()
        return total / max(steps, 1)

    def train_step(self, batch: Batch, epoch: int) -> torch.Tensor:
        """Warm-up: one CE step per net on `batch`. After warm-up: one MixMatch iteration per net
        (on fresh labeled/unlabeled batches; `batch` is not used), as `bench perf` times it."""
        if self.in_warmup(epoch):
            return (self.warmup_step(self.model, self.optimizer, batch)
                    + self.warmup_step(self.model_b, self.optimizer_b, batch)) / 2
        losses = [next(iter(self.train_net_epoch(k, epoch, max_iters=1)), None) for k in (0, 1)]
        losses = [loss for loss in losses if loss is not None]
        return sum(losses) / max(len(losses), 1)

    # --- warm-up ----------------------------------------------------------------------------
    @property
    def training_log_prior(self) -> torch.Tensor | None:
        """The log prior the warm-up CE and L_x add to the logits (dividemix_bs), else None."""
        return self.log_prior if self.logit_adjusted else None

    def warmup_step(self, net: nn.Module, opt: torch.optim.Optimizer, batch: Batch) -> torch.Tensor:
        loss = warmup_loss(self.forward(batch.x, net), batch.y, self.hp["neg_entropy_warmup"],
                           self.training_log_prior)
        self.sgd_step(loss, opt)
        return loss.detach()

    # --- co-divide --------------------------------------------------------------------------
    @torch.no_grad()
    def per_sample_losses(self, net: nn.Module) -> torch.Tensor:
        """Eval-mode CE of every training sample on un-augmented images (CPU, fp32)."""
        ctx = self.ctx
        was_training = net.training
        net.eval()
        out = []
        step = self.hp["eval_batch_size"]
        for start, x in ctx.train_images.in_order(step):
            y = ctx.train_y[start : start + len(x)].to(x.device)
            out.append(F.cross_entropy(net(x).float(), y, reduction="none"))
        net.train(was_training)
        return torch.cat(out).cpu()

    def split(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(labeled indices, their clean probabilities, unlabeled indices) for net k, made by the
        other net's GMM."""
        prob = self.clean_prob[1 - k]
        mask = prob > self.hp["p_threshold"]
        return mask.nonzero().squeeze(1), prob[mask], (~mask).nonzero().squeeze(1)

    def record_split_diagnostics(self) -> None:
        """Labeled-set size, precision and recall of the clean split, per net's GMM."""
        diag, y = self.ctx.diagnostics, self.ctx.train_y
        all_idx = torch.arange(len(y), device=y.device)
        clean_total = diag.label_accuracy(all_idx, y) / 100.0 * len(y)
        for name, prob in zip("ab", self.clean_prob):
            labeled = (prob > self.hp["p_threshold"]).nonzero().squeeze(1).to(y.device)
            precision = diag.label_accuracy(labeled, y[labeled])
            diag.record(f"labeled_{name}", float(len(labeled)))
            diag.record(f"split_precision_{name}", precision)
            if clean_total != clean_total:  # NaN: the clean labels are unknown (real noise)
                recall = float("nan")
            else:
                recall = precision * len(labeled) / clean_total if clean_total > 0 and len(labeled) else 0.0
            diag.record(f"split_recall_{name}", recall)

    # --- MixMatch phase ---------------------------------------------------------------------
    def two_views(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two augmented views of the samples `index`, drawn in one batched call."""
        views = self.ctx.train_images.batch(torch.cat([index, index]), train=True, generator=self.ctx.generator)
        return views[: len(index)], views[len(index) :]

    def train_net_epoch(self, k: int, epoch: int, max_iters: int | None = None) -> Iterable[torch.Tensor]:
        """Net k's MixMatch iterations for this epoch (one per labeled batch; unlabeled cycled)."""
        labeled, weights, unlabeled = self.split(k)
        if len(labeled) == 0:
            return
        if len(unlabeled) == 0:  # the official code would stop here; keep training on all data
            unlabeled = torch.arange(len(self.ctx.train_y))
        bs = self.hp["mix_batch_size"]
        gen = self.ctx.generator
        labeled_perm = torch.randperm(len(labeled), generator=gen)
        iters = -(-len(labeled) // bs)  # the official loader keeps the last, smaller batch
        ramp_iters = len(labeled) // bs + 1  # the official code's num_iter (for the ramp)
        u_order, u_pos = torch.randperm(len(unlabeled), generator=gen), 0
        for it in range(iters if max_iters is None else min(iters, max_iters)):
            pick = labeled_perm[it * bs : (it + 1) * bs]
            if u_pos >= len(unlabeled):  # cycle the unlabeled loader (its last batch may be short)
                u_order, u_pos = torch.randperm(len(unlabeled), generator=gen), 0
            u_pick = unlabeled[u_order[u_pos : u_pos + bs]]
            u_pos += bs
            progress = epoch + it / ramp_iters
            yield self.mixmatch_step(k, labeled[pick], weights[pick], u_pick, progress)

    def mixmatch_step(self, k: int, x_index: torch.Tensor, w: torch.Tensor, u_index: torch.Tensor,
                      progress: float) -> torch.Tensor:
        """One DivideMix iteration for net k (the other net frozen in eval mode)."""
        ctx, hp = self.ctx, self.hp
        net, other = self.modules()[k], self.modules()[1 - k]
        opt = self.optimizers()[k]
        net.train()
        other.eval()
        x1, x2 = self.two_views(x_index)
        u1, u2 = self.two_views(u_index)
        y = ctx.train_y[x_index.to(ctx.train_y.device)].to(ctx.device)
        w = w.to(ctx.device)
        with torch.no_grad():
            other_u = other(torch.cat([u1, u2])).softmax(1)  # eval mode: batching changes nothing
            targets_u = co_guess([net(u1).softmax(1), net(u2).softmax(1), *other_u.chunk(2)], hp["temperature"])
            targets_x = co_refine(net(x1).softmax(1), net(x2).softmax(1),
                                  F.one_hot(y, ctx.num_classes).float(), w, hp["temperature"])
        other.train()
        lam = float(torch.distributions.Beta(hp["alpha"], hp["alpha"]).sample())
        inputs, targets = mixmatch(torch.cat([x1, x2, u1, u2]),
                                   torch.cat([targets_x, targets_x, targets_u, targets_u]), lam, ctx.generator)
        lambda_u = lambda_u_ramp(hp["lambda_u"], progress, hp["warmup_epochs"], hp["rampup_epochs"])
        loss = mixmatch_loss(self.forward(inputs, net), targets, 2 * len(x_index), lambda_u, hp["uniform_prior"],
                             self.training_log_prior)["loss"]
        self.sgd_step(loss, opt)
        return loss.detach()

    # --- cost model (bench perf --epoch) ----------------------------------------------------
    def epoch_cost_model(self, epoch: int) -> EpochCostModel:
        """A post-warm-up epoch: Σ_nets ceil(|labeled| / 64) MixMatch steps, one inference pass
        and one GMM fit per net. Call after `on_epoch_start(epoch)` (the split must exist)."""
        if self.in_warmup(epoch):
            raise ValueError(f"epoch {epoch} is a warm-up epoch; the cost model describes the co-training epochs")
        splits = [self.split(k) for k in (0, 1)]
        labeled = [len(s[0]) for s in splits]
        bs = self.hp["mix_batch_size"]
        x_index, w, u_index = splits[0][0][:bs], splits[0][1][:bs], splits[0][2][:bs]
        if len(x_index) == 0 or len(u_index) == 0:
            raise ValueError("the co-divide left an empty labeled or unlabeled set; try more warm-up epochs")
        losses = normalise_losses(self.per_sample_losses(self.model))
        iterations = sum(-(-n // bs) for n in labeled)  # the official loader keeps the last batch
        return EpochCostModel(
            parts=[
                CostPart("mixmatch_step", iterations,
                         lambda: self.mixmatch_step(0, x_index, w, u_index, float(epoch))),
                CostPart("inference_pass", 2, lambda: self.per_sample_losses(self.model)),
                CostPart("gmm_fit", 2, lambda: gmm_clean_probability(losses, self.hp["gmm_seed"])),
            ],
            details={"labeled_fraction": [n / len(self.ctx.train_y) for n in labeled],
                     "iterations": iterations},
        )


@METHODS.register("dividemix_bs", "DivideMix with Balanced Softmax (log noisy class prior) in warm-up CE and L_x")
class DivideMixBalancedSoftmax(DivideMix):
    """Balanced Softmax in the supervised losses only: warm-up CE and L_x are on logits +
    log(noisy class counts). L_u, R, the warm-up confidence penalty (asym noise), co-divide,
    co-guessing, co-refinement and prediction use the raw logits (module docstring: R on adjusted
    logits would correct for the long tail a second time)."""

    display_name = "DivideMix + BS"
    colour = "#b8860b"
    order = 40

    logit_adjusted = True
