"""Correctness tests for Dynamic Loss (methods/dynamic_loss.py, methods.md §10).

The registry-wide tests (tests/methods/test_methods.py) cover a 2-epoch default run, which ends inside
the 5 warm-up epochs. The meta phase (ranks, hierarchical sampling, virtual/meta/actual step,
fine-tune pass) is pinned by `test_meta_phase_regression`, a digits run with one warm-up epoch
whose numbers live in tests/golden/runs/dynamic_loss_meta_phase.json. After a deliberate change,
regenerate them with

    python tests/golden/regenerate.py dynamic_loss_meta_phase

and review the diff.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_matches_golden, golden_numbers

from bench.core.specs import OptimSpec
from bench.nn.backbones import build_backbone
from methods import METHODS, Batch, MethodContext
from methods.base import Diagnostics
from methods.bilevel import functional_forward
from methods.dynamic_loss import (
    DynamicLoss,
    DynamicMetaNet,
    base_margin,
    hierarchical_sample,
    loss_rank_bins,
)

NUM_CLASSES = 10
SIZE = 4  # images are 1 × 4 × 4


def make_method(counts: list[int], seed: int = 0, **hparams) -> DynamicLoss:
    """A DynamicLoss on random 4×4 images with noisy-label class sizes `counts` (MLP backbone)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(len(counts)).repeat_interleave(torch.tensor(counts))
    y = y[torch.randperm(len(y), generator=gen)]
    x = torch.randint(0, 256, (len(y), 1, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    ctx = MethodContext(
        num_classes=len(counts), in_channels=1, image_size=SIZE, epochs=10, batch_size=32,
        steps_per_epoch=-(-len(y) // 32), device=torch.device("cpu"),
        optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4), train_y=y, noisy_counts=list(counts),
        model_factory=lambda: build_backbone("mlp", 1, len(counts), SIZE),
        transform=lambda t, train=True, generator=None: t.float() / 255.0,
        generator=gen, diagnostics=Diagnostics(y), train_x=x,
    )
    torch.manual_seed(seed)
    return DynamicLoss(ctx, {**DynamicLoss.defaults, **hparams})


def batch_of(method: DynamicLoss, index: torch.Tensor) -> Batch:
    ctx = method.ctx
    return Batch(x=ctx.transform(ctx.train_x[index], train=True), y=ctx.train_y[index], index=index)


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
    # meta phase: CE_soft(y*, z + q) with q_0 ≈ 100 and no label 0 in the batch
    m.on_epoch_start(1)
    assert m.train_step(batch, 1).item() > 50
    # the fine-tune pass uses the margin as well
    assert m.margin()[0] > 90
    # prediction: raw logits
    for module in m.modules():
        module.eval()
    probe = batch.x[:8]
    assert torch.equal(m.predict(probe), m.model(probe))


def test_virtual_step_is_the_real_sgd_step():
    """θ̂ of the look-ahead equals what torch.optim.SGD (momentum, weight decay, existing
    buffers) does with the same loss; the meta gradient reaches LC and MG."""
    m = make_method([40] * NUM_CLASSES, warmup_epochs=0)
    m.on_epoch_start(0)
    m.train_step(batch_of(m, torch.arange(32)), 0)  # creates the momentum buffers
    assert all("momentum_buffer" in m.optimizer.state[p] for p in m.model.parameters())
    batch = batch_of(m, torch.arange(32, 64))
    fast, _, loss = m.virtual_step(batch)
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


# --- digits runs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def meta_phase() -> dict:
    return golden_numbers("dynamic_loss_meta_phase")


def test_meta_phase_run_learns(meta_phase):
    assert meta_phase["test_acc"][-1] > 10.0 + 20.0  # chance is 10 % on digits
    # digits ρ=10: n_min = 25 → 12 primary, 6 meta per class = 60 held out of 497
    assert meta_phase["meta_set_size"] == [0, 60, 60]
    assert meta_phase["samples"] == [497, 437, 437]
    assert all(0.0 <= a <= 100.0 for a in meta_phase["lc_label_acc"])
    assert all(0.5 < w < 1.0 for w in meta_phase["lc_weight_mean"])


def test_meta_phase_regression(meta_phase):
    assert_matches_golden("dynamic_loss_meta_phase", meta_phase)

