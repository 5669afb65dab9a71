"""Correctness tests for Dynamic Loss (methods/dynamic_loss.py, methods.md §10).

The registry-wide tests (tests/methods/test_methods.py) cover a 2-epoch default run, which ends inside
the 5 warm-up epochs. The meta phase (ranks, hierarchical sampling, virtual/meta/actual step,
fine-tune pass) is pinned by `test_meta_phase_regression`, a digits run with one warm-up epoch
whose numbers live in tests/golden/runs/dynamic_loss_meta_phase.json. After a deliberate change,
regenerate them with

    python tests/golden/regenerate.py dynamic_loss_meta_phase

and review the diff. The losses of each step (virtual, meta, actual, fine-tune) are checked
directly against computations written out here, on tiny random images.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_matches_golden, golden_numbers

from bench.core.specs import OptimSpec
from bench.nn.backbones import build_backbone
from methods import METHODS, Batch, MethodContext
from methods.base import Diagnostics
from methods.bilevel import LookAhead, functional_forward
from methods.dynamic_loss import (
    DynamicLoss,
    DynamicMetaNet,
    base_margin,
    hard_gumbel_sample,
    hierarchical_sample,
    loss_rank_bins,
)

NUM_CLASSES = 10
SIZE = 4  # images are 1 × 4 × 4
#: the test transform: weak view = pixels / 255, strong (train-time) view = weak + STRONG_SHIFT
STRONG_SHIFT = 0.25
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4


def two_view_transform(t: torch.Tensor, train: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Weak view (train=False) and a distinguishable, deterministic strong view."""
    return t.float() / 255.0 + (STRONG_SHIFT if train else 0.0)


def make_method(counts: list[int], seed: int = 0, mislabelled_every: int = 0, **hparams) -> DynamicLoss:
    """A DynamicLoss on random 4×4 images with noisy-label class sizes `counts` (MLP backbone).
    With `mislabelled_every` = k, every k-th sample's clean label (seen by the diagnostics only)
    is its given label + 1."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(len(counts)).repeat_interleave(torch.tensor(counts))
    y = y[torch.randperm(len(y), generator=gen)]
    x = torch.randint(0, 256, (len(y), 1, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    clean = y.clone()
    if mislabelled_every:
        clean[::mislabelled_every] = (y[::mislabelled_every] + 1) % len(counts)
    ctx = MethodContext(
        num_classes=len(counts), in_channels=1, image_size=SIZE, epochs=10, batch_size=32,
        steps_per_epoch=-(-len(y) // 32), device=torch.device("cpu"),
        optim=OptimSpec(lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY), train_y=y, noisy_counts=list(counts),
        model_factory=lambda: build_backbone("mlp", 1, len(counts), SIZE),
        transform=two_view_transform, generator=gen, diagnostics=Diagnostics(clean), train_x=x,
    )
    torch.manual_seed(seed)
    return METHODS.get(hparams.pop("method", "dynamic_loss"))(ctx, hparams)


def batch_of(method: DynamicLoss, index: torch.Tensor) -> Batch:
    """Training batch `index`, strong view."""
    ctx = method.ctx
    return Batch(x=ctx.transform(ctx.train_x[index], train=True), y=ctx.train_y[index], index=index)


def spread_margins(method: DynamicLoss, low: float = -2.0, high: float = 2.0) -> None:
    """Make q far from constant across classes (a constant q would not change any softmax)."""
    with torch.no_grad():
        method.metanet.mg.net[-1].bias.copy_(torch.linspace(low, high, method.ctx.num_classes))


def soft_ce_by_hand(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean_i −Σ_c target_ic · log softmax(logits_i)_c, written out."""
    log_p = logits - logits.exp().sum(dim=1, keepdim=True).log()
    return -(target * log_p).sum(dim=1).mean()


class CountingSample:
    """A deterministic stand-in for `hard_gumbel_sample`: call k returns onehot((argmin z + k) mod C),
    which is neither the softmax nor the argmax; remembers the logits of every call."""

    def __init__(self) -> None:
        self.logits: list[torch.Tensor] = []

    def expected(self, logits: torch.Tensor, call: int) -> torch.Tensor:
        return F.one_hot((logits.argmin(dim=1) + call) % logits.shape[1], logits.shape[1]).float()

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        self.logits.append(logits.detach().clone())
        return self.expected(logits.detach().float(), len(self.logits))


# --- loss-rank bins ---------------------------------------------------------------------------
def test_rank_bins_are_assigned_per_noisy_class():
    # class 0: 4 samples, losses 0.4 0.1 0.3 0.2 → positions 3 0 2 1 → floor(k/5·10) = 6 0 4 2
    # class 1: 3 samples, losses 5 1 3 → positions 2 0 1 → floor(k/4·10) = 5 0 2
    # class 2: 1 sample → position 0 → bin 0 (its large loss is compared only within class 2)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 0, 1])
    losses = torch.tensor([0.4, 5.0, 0.1, 9.0, 1.0, 0.3, 0.2, 3.0])
    bins = loss_rank_bins(losses, labels, 3, 10)
    assert bins.tolist() == [6, 5, 0, 0, 0, 4, 2, 2]


def test_rank_bins_span_the_range_and_follow_the_loss():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(torch.tensor([9, 99, 500]))
    losses = torch.rand(len(labels), generator=gen)
    bins = loss_rank_bins(losses, labels, 3, 100)
    # n_c = 9: bins are exactly 10·k
    first = labels == 0
    order = losses[first].argsort()
    assert bins[first][order].tolist() == [10 * k for k in range(9)]
    for c in range(3):
        members = labels == c
        sorted_bins = bins[members][losses[members].argsort()]
        assert sorted_bins.min() == 0 and sorted_bins.max() < 100
        assert torch.all(sorted_bins[1:] >= sorted_bins[:-1])
    # 500 samples over 100 bins: every bin is used, about 5 samples each
    assert torch.bincount(bins[labels == 2], minlength=100).min() >= 4


# --- hierarchical sampling --------------------------------------------------------------------
def test_hierarchical_sampling_sizes_and_lowest_loss():
    counts = [50, 80, 120, 200, 300, 500, 700, 1000, 2000, 5000]  # n_min = 50 (C-10, ρ=100)
    labels = torch.arange(10).repeat_interleave(torch.tensor(counts))
    losses = torch.rand(len(labels), generator=torch.Generator().manual_seed(1))
    primary, meta = hierarchical_sample(losses, labels, 10, n_primary=int(0.5 * 50), n_meta=int(0.5 * 50 * 0.5),
                                        generator=torch.Generator().manual_seed(2))
    assert torch.bincount(labels[primary], minlength=10).tolist() == [25] * 10
    assert torch.bincount(labels[meta], minlength=10).tolist() == [12] * 10
    assert set(meta.tolist()) <= set(primary.tolist())
    rest = torch.tensor(sorted(set(primary.tolist()) - set(meta.tolist())))
    for c in range(10):
        assert losses[meta][labels[meta] == c].max() < losses[rest][labels[rest] == c].min()
    # the primary set is random: the 25 of the 5000-sample class are spread over it
    big = primary[labels[primary] == 9]
    assert big.max() - big.min() > 1000


def test_meta_set_is_held_out_of_the_epoch_and_fine_tuned_on():
    counts = [50, 60, 70, 80, 90, 100, 110, 120, 130, 140]
    m = make_method(counts, warmup_epochs=2)
    assert (m.n_primary, m.n_meta) == (25, 12)
    m.on_epoch_start(0)
    assert m.epoch_train_indices(0) is None and len(m.meta_indices) == 0
    m.on_epoch_start(2)
    y = m.ctx.train_y
    assert torch.bincount(y[m.primary_indices], minlength=10).tolist() == [25] * 10
    assert torch.bincount(y[m.meta_indices], minlength=10).tolist() == [12] * 10
    losses = m.training_losses()
    rest = torch.tensor(sorted(set(m.primary_indices.tolist()) - set(m.meta_indices.tolist())))
    for c in range(10):
        assert losses[m.meta_indices][y[m.meta_indices] == c].max() <= losses[rest][y[rest] == c].min()
    train = m.epoch_train_indices(2)
    assert set(train.tolist()).isdisjoint(m.meta_indices.tolist())
    assert len(train) + len(m.meta_indices) == len(y)
    # the end-of-epoch pass takes one SGD step per meta batch (120 meta samples, batch 32 → 4)
    steps = m.global_step
    m.train_epoch(2, [])
    assert m.global_step == steps + 4


# --- the meta-net -----------------------------------------------------------------------------
def test_initial_label_weights_trust_the_given_labels():
    torch.manual_seed(0)
    net = DynamicMetaNet(100, NUM_CLASSES, DynamicLoss.defaults)
    g = net.lc.weight_table()
    start = 1.0 / (1.0 + math.exp(-3.98))  # ≈ 0.9817
    assert g.shape == (100, NUM_CLASSES)
    assert (g - start).abs().max() < 0.01
    assert g.mean().item() == pytest.approx(start, abs=0.002)
    # the given label dominates y* at the start: y* = g·onehot(y) + (1 − g)·y'
    labels = torch.tensor([3, 7])
    y_star, w = net.corrected_labels(torch.randn(2, NUM_CLASSES), labels, torch.tensor([0, 99]), sample=True)
    assert y_star.argmax(dim=1).tolist() == [3, 7]
    assert torch.allclose(y_star.sum(dim=1), torch.ones(2))
    assert torch.all(w > 0.97)


def test_margins_are_added_in_training_only():
    m = make_method([40] * NUM_CLASSES, warmup_epochs=1)
    with torch.no_grad():
        m.metanet.mg.net[-1].bias.zero_()
        m.metanet.mg.net[-1].bias[0] = 100.0  # q_0 ≈ 100
    index = torch.nonzero(m.ctx.train_y != 0).squeeze(1)[:32]
    batch = batch_of(m, index)
    # warm-up: plain CE, no margin
    assert m.train_step(batch, 0).item() < 10
    # meta phase: CE_soft(y*, z + q) with q_0 ≈ 100 and no label 0 in the batch (the exact
    # losses: test_virtual_step_loss_*, test_actual_step_*, test_finetune_pass_*)
    m.on_epoch_start(1)
    assert m.train_step(batch, 1).item() > 50
    # prediction: raw logits
    for module in m.modules():
        module.eval()
    probe = batch.x[:8]
    assert torch.equal(m.predict(probe), m.model(probe))


def test_virtual_step_is_the_real_sgd_step():
    """θ̂ of the look-ahead equals what torch.optim.SGD (momentum, weight decay, existing
    buffers) does with the same loss; the meta gradient reaches LC and MG."""
    m = make_method([40] * NUM_CLASSES, warmup_epochs=0, meta_grad="unrolled")  # reads the reference graph
    m.on_epoch_start(0)
    m.train_step(batch_of(m, torch.arange(32)), 0)  # creates the momentum buffers
    assert all("momentum_buffer" in m.optimizer.state[p] for p in m.model.parameters())
    batch = batch_of(m, torch.arange(32, 64))
    step, _, loss = m.virtual_step(batch)
    fast = step.fast
    meta_x = m.ctx.transform(m.ctx.train_x[m.meta_indices])
    meta_loss = F.cross_entropy(functional_forward(m.model, fast, meta_x), m.ctx.train_y[m.meta_indices])
    for part in (m.metanet.lc, m.metanet.mg):
        grads = torch.autograd.grad(meta_loss, list(part.parameters()), retain_graph=True)
        assert all(torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0
    m.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    m.optimizer.step()
    for name, p in m.model.named_parameters():
        torch.testing.assert_close(fast[name], p.detach(), rtol=1e-5, atol=1e-6)


def test_label_corrector_warmup_stops_after_its_iterations():
    m = make_method([40] * NUM_CLASSES, lc_warmup_iters=1)
    m.on_epoch_start(0)
    before = [p.detach().clone() for p in m.metanet.parameters()]
    m.train_step(batch_of(m, torch.arange(32)), 0)
    after = [p.detach().clone() for p in m.metanet.parameters()]
    lc_moved = [not torch.equal(a, b) for a, b in zip(before, after)]
    n_lc = len(list(m.metanet.lc.parameters()))
    assert all(lc_moved[:n_lc]) and not any(lc_moved[n_lc:])  # LC trained, MG not
    m.train_step(batch_of(m, torch.arange(32, 64)), 0)
    assert all(torch.equal(a, p) for a, p in zip(after, m.metanet.parameters()))
    # past the LC warm-up, warm-up epochs need no ranking pass
    m.ranks.fill_(7)
    m.on_epoch_start(1)
    assert torch.all(m.ranks == 7)


# --- the losses of one meta-phase iteration and of the fine-tune pass ---------------------------
def meta_phase_method(**hparams) -> DynamicLoss:
    """A method at the start of its first meta-phase epoch, with margins spread across classes."""
    m = make_method([40] * NUM_CLASSES, warmup_epochs=1, **hparams)
    m.on_epoch_start(1)
    spread_margins(m)
    return m


def corrected_by_hand(m: DynamicLoss, index: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """y* = g·onehot(y) + (1 − g)·y', g read from the LC's table at (rank, given label)."""
    y = m.ctx.train_y[index]
    with torch.no_grad():
        g = m.metanet.lc.weight_table()[m.ranks[index], y][:, None]
    return g * F.one_hot(y, NUM_CLASSES).float() + (1 - g) * prediction


def test_hard_gumbel_sample_draws_classes_with_softmax_probabilities():
    """One-hot rows whose class frequencies follow softmax(z): a sample, not the argmax."""
    torch.manual_seed(0)
    logits = torch.tensor([[1.0, 0.0, -1.0]]).expand(20000, 3)
    sample = hard_gumbel_sample(logits)
    assert torch.all(sample.sum(dim=1) == 1) and set(sample.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(sample.mean(dim=0), logits[0].softmax(dim=0), atol=0.015, rtol=0)


def test_virtual_step_loss_is_soft_ce_of_corrected_labels_against_shifted_logits(monkeypatch):
    """L_v = mean CE_soft(y*, z + q) on the weak view, y' a hard Gumbel sample."""
    m = meta_phase_method()
    sampler = CountingSample()
    monkeypatch.setattr("methods.dynamic_loss.hard_gumbel_sample", sampler)
    index = torch.arange(32)
    _, _, loss = m.virtual_step(batch_of(m, index))
    with torch.no_grad():
        z = m.model(m.ctx.transform(m.ctx.train_x[index], train=False))  # weak view at θ
        q = m.metanet.mg.net(m.metanet.mg.input).squeeze(0)
    assert len(sampler.logits) == 1
    y_star = corrected_by_hand(m, index, sampler.expected(z, 1))
    expected = soft_ce_by_hand(z + q, y_star)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)
    # the margin matters here: without it the loss is clearly different
    assert (soft_ce_by_hand(z, y_star) - expected).abs() > 0.05


def test_actual_step_uses_a_fresh_hard_gumbel_sample_of_the_weak_logits(monkeypatch):
    """Actual step: y* from the updated LC and a second, fresh sample of the WEAK logits at θ;
    loss CE_soft(y*, z_strong + q) with the updated MG, then the real SGD step."""
    m = meta_phase_method()
    sampler = CountingSample()
    monkeypatch.setattr("methods.dynamic_loss.hard_gumbel_sample", sampler)
    index = torch.arange(32)
    batch = batch_of(m, index)
    before = copy.deepcopy(m.model)
    loss = m.train_step(batch, 1)
    with torch.no_grad():
        weak = before(m.ctx.transform(m.ctx.train_x[index], train=False))
        strong = before(batch.x)
        q = m.metanet.mg.net(m.metanet.mg.input).squeeze(0)  # after the meta step, as in the actual step
    # two samples (virtual, actual), both of the weak logits at θ, not of the strong ones
    assert len(sampler.logits) == 2
    for seen in sampler.logits:
        torch.testing.assert_close(seen, weak)
        assert not torch.allclose(seen, strong)
    # the actual step's loss uses the second sample; the first, the softmax or the argmax give other losses
    expected = soft_ce_by_hand(strong + q, corrected_by_hand(m, index, sampler.expected(weak, 2)))
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    for other in (sampler.expected(weak, 1), weak.softmax(dim=1), F.one_hot(weak.argmax(dim=1), NUM_CLASSES).float()):
        assert (soft_ce_by_hand(strong + q, corrected_by_hand(m, index, other)) - expected).abs() > 1e-3


def test_meta_loss_is_plain_ce_of_the_look_ahead_net_on_given_labels(monkeypatch):
    """L_meta = mean CE of θ̂ on a strong meta batch against its given labels: no margin, no y*."""
    m = meta_phase_method()
    with torch.no_grad():
        m.metanet.mg.net[-1].bias[0] = 50.0  # a margin in the meta loss would be obvious
    torch.manual_seed(1)
    fast = {name: (p.detach() + 0.05 * torch.randn_like(p)) for name, p in m.model.named_parameters()}
    drawn, losses = [], []
    sampler_next = m.meta_sampler.next

    def next_and_remember() -> tuple[torch.Tensor, torch.Tensor]:
        drawn.append(sampler_next())
        return drawn[-1]

    monkeypatch.setattr(m.meta_sampler, "next", next_and_remember)
    monkeypatch.setattr(m, "meta_update", lambda loss, groups, step=None: losses.append(loss.detach()))
    m.meta_step(LookAhead(fast, {}))
    (x, y), = drawn
    # the batch: strong views of meta samples, with their given labels
    meta_strong = m.ctx.transform(m.ctx.train_x[m.meta_indices], train=True).flatten(1)
    position = (x.flatten(1)[:, None] == meta_strong[None]).all(dim=2).float().argmax(dim=1)
    assert torch.equal(x.flatten(1), meta_strong[position])
    assert torch.equal(y, m.ctx.train_y[m.meta_indices][position])
    net = copy.deepcopy(m.model)
    net.load_state_dict(fast)
    with torch.no_grad():
        log_p = net(x).log_softmax(dim=1)
    expected = -log_p[torch.arange(len(y)), y].mean()
    torch.testing.assert_close(losses[0], expected, rtol=1e-5, atol=1e-6)


def sgd_by_hand(params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                lr: float) -> None:
    """SGD with momentum and weight decay (PyTorch's form, dampening 0), in place."""
    for name, p in params.items():
        d = grads[name] + WEIGHT_DECAY * p
        buffers[name] = d if name not in buffers else MOMENTUM * buffers[name] + d
        p -= lr * buffers[name]


def test_finetune_pass_steps_on_ce_with_the_margin():
    """Each fine-tune step is an SGD step on CE(onehot(y), z + q) over a meta batch (strong view)."""
    m = meta_phase_method(meta_batch_size=40)  # 100 meta samples → batches of 40, 40, 20
    generator_state = m.ctx.generator.get_state()
    net = copy.deepcopy(m.model)
    with torch.no_grad():
        q = m.metanet.mg.net(m.metanet.mg.input).squeeze(0)
    steps = m.global_step
    m.finetune_meta_set()
    assert m.global_step == steps + 3
    order = m.meta_indices[torch.randperm(len(m.meta_indices), generator=torch.Generator().set_state(generator_state))]
    params = dict(net.named_parameters())
    buffers: dict[str, torch.Tensor] = {}
    for part in order.split(40):
        x = m.ctx.train_x[part].float() / 255.0 + STRONG_SHIFT
        loss = soft_ce_by_hand(net(x) + q, F.one_hot(m.ctx.train_y[part], NUM_CLASSES).float())
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
        with torch.no_grad():
            sgd_by_hand(params, grads, buffers, LR)
    for name, p in m.model.named_parameters():
        torch.testing.assert_close(p.detach(), params[name].detach(), rtol=1e-5, atol=1e-6)


def test_label_correction_diagnostics_only_where_y_star_trained_the_classifier():
    """Warm-up epochs (plain CE) record no y* statistics; a meta-phase epoch records those of its
    actual steps."""
    m = make_method([40] * NUM_CLASSES, warmup_epochs=1, mislabelled_every=4)
    m.on_epoch_start(0)
    m.train_epoch(0, [batch_of(m, torch.arange(32))])  # includes an LC warm-up step
    assert m.ctx.diagnostics.pop() == {"meta_set_size": 0.0}
    m.on_epoch_start(1)
    index = m.epoch_train_indices(1)[:32]
    m.train_epoch(1, [batch_of(m, index)])
    recorded = m.ctx.diagnostics.pop()
    y = m.ctx.train_y[index]
    with torch.no_grad():
        g = m.metanet.lc.weight_table()[m.ranks[index], y]  # the LC does not move after the actual step
    assert torch.all(g > 0.5)  # so argmax y* is the given label whatever y' is
    clean = y.clone()
    clean[index % 4 == 0] = (y[index % 4 == 0] + 1) % NUM_CLASSES
    assert recorded["lc_label_acc"] == pytest.approx(100.0 * (clean == y).float().mean().item())
    assert recorded["lc_label_acc"] < 100.0
    assert recorded["lc_weight_mean"] == pytest.approx(g.mean().item(), abs=1e-6)
    assert recorded["meta_set_size"] == len(m.meta_indices) == 100


# --- variants ---------------------------------------------------------------------------------
def test_variants_are_registered_with_their_base_margins():
    assert METHODS.get("dynamic_loss_bs").defaults["base_margin"] == "balanced_softmax"
    assert METHODS.get("dynamic_loss_la").defaults["base_margin"] == "logit_adjustment"
    assert METHODS.get("dynamic_loss").defaults["base_margin"] == "none"
    counts = [500, 100, 0, 10]
    cpu = torch.device("cpu")
    bs = base_margin("balanced_softmax", counts, 1.0, cpu)
    la = base_margin("logit_adjustment", counts, 1.0, cpu)
    torch.testing.assert_close(bs, torch.tensor([500.0, 100.0, 1.0, 10.0]).log())
    torch.testing.assert_close(la, (torch.tensor([500.0, 100.0, 1.0, 10.0]) / 611.0).log())
    assert torch.all(base_margin("none", counts, 1.0, cpu) == 0)
    # τ = 1: the two differ by a constant, so softmax losses are the same; τ ≠ 1 scales
    torch.testing.assert_close(bs - la, torch.full((4,), math.log(611.0)))
    torch.testing.assert_close(base_margin("logit_adjustment", counts, 0.5, cpu), 0.5 * la)
    m = make_method([40] * NUM_CLASSES, base_margin="balanced_softmax")
    torch.testing.assert_close(m.margin() - m.metanet.mg(), torch.full((NUM_CLASSES,), math.log(40.0)))


def test_logit_adjustment_trains_as_balanced_softmax_at_tau_one():
    """τ·log(n_j / N) = log n_j − log N at τ = 1: the same training losses as the Balanced Softmax
    variant (warm-up and meta phase); τ = 0.5 differs. So dynamic_loss_la is not in default grids."""
    counts = [80, 60, 50, 40, 30, 25, 20, 15, 12, 10]
    runs = {name: make_method(counts, warmup_epochs=1, **hp) for name, hp in (
        ("bs", {"method": "dynamic_loss_bs"}), ("la", {"method": "dynamic_loss_la"}),
        ("la_half", {"method": "dynamic_loss_la", "base_margin_tau": 0.5}))}
    first = torch.arange(32)
    with torch.no_grad():
        z = runs["bs"].model(batch_of(runs["bs"], first).x)  # the same initial network in all three
    n = torch.tensor(counts, dtype=torch.float32)
    given = F.one_hot(runs["bs"].ctx.train_y[first], len(counts)).float()
    by_hand = {"bs": soft_ce_by_hand(z + n.log(), given), "la": soft_ce_by_hand(z + (n / n.sum()).log(), given),
               "la_half": soft_ce_by_hand(z + 0.5 * (n / n.sum()).log(), given)}
    losses: dict[str, list[float]] = {}
    for name, m in runs.items():
        warm = m.train_step(batch_of(m, first), 0)
        torch.testing.assert_close(warm, by_hand[name], rtol=1e-5, atol=1e-6)
        m.on_epoch_start(1)
        meta = []
        for step, index in enumerate(m.epoch_train_indices(1)[:96].split(32)):
            torch.manual_seed(10 + step)  # the same Gumbel draws in every run
            meta.append(m.train_step(batch_of(m, index), 1).item())
        losses[name] = [warm.item(), *meta]
    assert losses["la"] == pytest.approx(losses["bs"], abs=1e-4)
    assert all(abs(a - b) > 1e-3 for a, b in zip(losses["la_half"], losses["bs"]))


def test_logit_adjustment_variant_is_registered_but_not_run_by_default():
    assert "dynamic_loss_la" in METHODS.names()
    assert "dynamic_loss_la" not in METHODS.default_names()
    assert {"dynamic_loss", "dynamic_loss_bs"} <= set(METHODS.default_names())


# --- digits runs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def meta_phase() -> dict:
    return golden_numbers("dynamic_loss_meta_phase")


def test_meta_phase_run_learns(meta_phase):
    assert meta_phase["test_acc"][-1] > 10.0 + 20.0  # chance is 10 % on digits
    # digits ρ=10: n_min = 25 → 12 primary, 6 meta per class = 60 held out of 497
    assert meta_phase["meta_set_size"] == [0, 60, 60]
    assert meta_phase["samples"] == [497, 437, 437]
    # y* statistics only where y* trained the classifier (-1.0: not recorded in the warm-up epoch)
    assert meta_phase["lc_label_acc"][0] == meta_phase["lc_weight_mean"][0] == -1.0
    assert all(0.0 <= a <= 100.0 for a in meta_phase["lc_label_acc"][1:])
    assert all(0.5 < w < 1.0 for w in meta_phase["lc_weight_mean"][1:])


def test_meta_phase_regression(meta_phase):
    assert_matches_golden("dynamic_loss_meta_phase", meta_phase)

