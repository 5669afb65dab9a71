"""Correctness tests for DivideMix (methods/dividemix.py, methods.md §4).

The registry-wide tests (tests/methods/test_methods.py) cover a 2-epoch default run, which ends inside
the 10 warm-up epochs. The co-divide + MixMatch phase is pinned by `test_mixmatch_phase_regression`,
a digits run with one warm-up epoch whose numbers live in
tests/golden/runs/dividemix_mixmatch.json. After a deliberate change, regenerate them with

    python tests/golden/regenerate.py dividemix_mixmatch

and review the diff.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import assert_matches_golden, digits_run, golden_numbers

from bench.core.specs import OptimSpec
from bench.nn.backbones import build_backbone
from bench.train.engine import run_trial
from methods import METHODS, Batch, MethodContext
from methods.base import Diagnostics
from methods.dividemix import (
    DivideMix,
    DivideMixBalancedSoftmax,
    co_guess,
    co_refine,
    gmm_clean_probability,
    lambda_u_ramp,
    mixmatch,
    normalise_losses,
    sharpen,
    uniform_prior_penalty,
)

SIZE = 4  # images are 1 × 4 × 4


def make_method(n: int, num_classes: int = 5, seed: int = 0, cls=DivideMix, clean_y=None, **hparams) -> DivideMix:
    """A DivideMix on `n` random 4×4 images with random noisy labels (MLP backbone)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    x = torch.randint(0, 256, (n, 1, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    ctx = MethodContext(
        num_classes=num_classes, in_channels=1, image_size=SIZE, epochs=10, batch_size=32,
        steps_per_epoch=-(-n // 32), device=torch.device("cpu"),
        optim=OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4), train_y=y,
        noisy_counts=torch.bincount(y, minlength=num_classes).tolist(),
        model_factory=lambda: build_backbone("mlp", 1, num_classes, SIZE),
        transform=lambda t, train=True, generator=None: t.float() / 255.0,
        generator=gen, diagnostics=Diagnostics(y if clean_y is None else clean_y), train_x=x,
    )
    torch.manual_seed(seed)
    return cls(ctx, {**cls.defaults, **hparams})


# --- co-divide --------------------------------------------------------------------------------
def test_gmm_split_recovers_planted_clean_set():
    gen = torch.Generator().manual_seed(0)
    n = 1001
    clean = torch.rand(n, generator=gen) < 0.6
    losses = torch.where(clean, 0.2 + 0.05 * torch.randn(n, generator=gen), 2.5 + 0.3 * torch.randn(n, generator=gen))
    prob = gmm_clean_probability(normalise_losses(losses))
    assert prob.shape == (n,)
    assert torch.equal(prob > 0.5, clean)


def test_normalise_losses_is_min_max():
    torch.testing.assert_close(normalise_losses(torch.tensor([2.0, 4.0, 3.0])), torch.tensor([0.0, 1.0, 0.5]))


def test_co_divide_handles_any_training_set_size_and_crosses_the_nets():
    m = make_method(237, warmup_epochs=0)  # odd size, not 50,000
    m.on_epoch_start(0)
    assert [p.shape for p in m.clean_prob] == [(237,), (237,)]
    labeled, w, unlabeled = m.split(0)
    assert torch.equal(labeled, (m.clean_prob[1] > 0.5).nonzero().squeeze(1))  # net A uses B's split
    assert len(labeled) + len(unlabeled) == 237 and torch.all(w > 0.5)
    diag = m.ctx.diagnostics.pop()
    assert diag["labeled_a"] == float((m.clean_prob[0] > 0.5).sum())
    assert diag["split_precision_a"] == 100.0 and diag["split_recall_a"] == pytest.approx(100.0 * diag["labeled_a"] / 237)


def test_split_precision_and_recall_use_the_clean_labels():
    y_clean = torch.randint(0, 5, (200,), generator=torch.Generator().manual_seed(0))
    m = make_method(200, clean_y=y_clean, warmup_epochs=0)  # noisy labels independent of clean
    m.clean_prob = [torch.linspace(0, 1, 200), torch.linspace(0, 1, 200)]
    m.record_split_diagnostics()
    d = m.ctx.diagnostics.pop()
    labeled = torch.arange(100, 200)
    precision = (y_clean[labeled] == m.ctx.train_y[labeled]).float().mean().item() * 100
    clean_total = (y_clean == m.ctx.train_y).sum().item()
    assert d["labeled_b"] == 100.0
    assert d["split_precision_b"] == pytest.approx(precision, abs=1e-4)
    assert d["split_recall_b"] == pytest.approx(precision * 100 / clean_total, abs=1e-4)


# --- targets and mixing -----------------------------------------------------------------------
def test_co_guessing_and_co_refinement_shapes_and_sums():
    gen = torch.Generator().manual_seed(0)
    probs = [torch.rand(7, 5, generator=gen).softmax(1) for _ in range(4)]
    q = co_guess(probs, 0.5)
    assert q.shape == (7, 5)
    torch.testing.assert_close(q.sum(1), torch.ones(7))
    torch.testing.assert_close(q, sharpen(sum(probs) / 4, 0.5))
    onehot = torch.nn.functional.one_hot(torch.arange(7) % 5, 5).float()
    w = torch.linspace(0, 1, 7)
    t = co_refine(probs[0], probs[1], onehot, w, 0.5)
    assert t.shape == (7, 5)
    torch.testing.assert_close(t.sum(1), torch.ones(7))
    torch.testing.assert_close(t[-1], onehot[-1])  # w = 1 keeps the given label
    torch.testing.assert_close(t[0], sharpen((probs[0][:1] + probs[1][:1]) / 2, 0.5)[0])  # w = 0


def test_sharpen_values():
    torch.testing.assert_close(sharpen(torch.tensor([[0.75, 0.25]]), 0.5), torch.tensor([[0.9, 0.1]]))


def test_mixmatch_keeps_targets_distributions_and_uses_larger_lambda():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3)
    t = torch.rand(12, 4, generator=gen).softmax(1)
    mx, mt = mixmatch(x, t, 0.2, torch.Generator().manual_seed(1))
    torch.testing.assert_close(mt.sum(1), torch.ones(12))
    assert torch.all(mt >= 0)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))  # one permutation for all rows
    torch.testing.assert_close(mx, 0.8 * x + 0.2 * x[perm])
    torch.testing.assert_close(mt, 0.8 * t + 0.2 * t[perm])


def test_lambda_u_ramp_values():
    assert lambda_u_ramp(25.0, 9.5, warmup=10) == 0.0
    assert lambda_u_ramp(25.0, 10.0, warmup=10) == 0.0
    assert lambda_u_ramp(25.0, 14.0, warmup=10) == pytest.approx(25.0 * 4 / 16)
    assert lambda_u_ramp(25.0, 26.0, warmup=10) == 25.0
    assert lambda_u_ramp(25.0, 100.0, warmup=10) == 25.0


def test_uniform_prior_penalty_is_zero_for_balanced_predictions():
    assert float(uniform_prior_penalty(torch.zeros(8, 4))) == pytest.approx(0.0, abs=1e-7)
    assert float(uniform_prior_penalty(torch.tensor([[5.0, 0.0, 0.0, 0.0]] * 8))) > 0.5


# --- the method -------------------------------------------------------------------------------
def test_ensemble_prediction_is_sum_of_logits():
    m = make_method(50)
    for net in m.modules():
        net.eval()
    x = torch.rand(6, 1, SIZE, SIZE)
    torch.testing.assert_close(m.predict(x), m.model(x) + m.model_b(x))
    assert len(m.optimizers()) == 2 and m.optimizers()[0] is not m.optimizers()[1]


def test_mixmatch_epoch_iterations_follow_the_labeled_set_size():
    m = make_method(237, warmup_epochs=0)
    m.clean_prob = [torch.ones(237), torch.zeros(237)]
    m.clean_prob[1][:130] = 0.9  # A's labeled set (made by B): 130 samples → ceil(130/64) = 3
    losses_a = list(m.train_net_epoch(0, epoch=0))
    assert len(losses_a) == 3
    assert list(m.train_net_epoch(1, epoch=0)) != []  # B: all 237 labeled, unlabeled falls back to all
    m.clean_prob[0][:] = 0.0
    assert list(m.train_net_epoch(1, epoch=0)) == []  # nothing labeled: no step


def test_balanced_softmax_variant_adjusts_training_logits_only():
    m = make_method(60, cls=DivideMixBalancedSoftmax)
    assert METHODS.get("dividemix_bs") is DivideMixBalancedSoftmax
    counts = torch.tensor(m.ctx.noisy_counts, dtype=torch.float32).clamp_min(1)
    z = torch.zeros(2, 5)
    torch.testing.assert_close(m.train_logits(z), counts.log().expand(2, 5))
    for net in m.modules():
        net.eval()
    x = torch.rand(3, 1, SIZE, SIZE)
    torch.testing.assert_close(m.predict(x), m.model(x) + m.model_b(x))
    torch.testing.assert_close(make_method(60).train_logits(z), z)


def test_train_step_after_warmup_updates_both_nets():
    m = make_method(150, warmup_epochs=0)
    m.on_epoch_start(0)
    before = [p.detach().clone() for net in m.modules() for p in net.parameters()]
    x = m.ctx.transform(m.ctx.train_x[:32])
    loss = m.train_step(Batch(x=x, y=m.ctx.train_y[:32], index=torch.arange(32)), 0)
    assert torch.isfinite(loss)
    after = [p for net in m.modules() for p in net.parameters()]
    n = len(before) // 2
    assert any(not torch.equal(a, b) for a, b in zip(before[:n], after[:n]))
    assert any(not torch.equal(a, b) for a, b in zip(before[n:], after[n:]))


# --- digits runs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixmatch_phase() -> dict:
    return golden_numbers("dividemix_mixmatch")


def test_mixmatch_phase_regression(mixmatch_phase):
    assert_matches_golden("dividemix_mixmatch", mixmatch_phase)


def test_mixmatch_phase_is_deterministic(mixmatch_phase):
    assert golden_numbers("dividemix_mixmatch") == mixmatch_phase


def test_balanced_digits_run_learns_and_filters_noise():
    """Balanced digits, 40 % sym noise (≈36 % wrong labels): the split is far cleaner than the data,
    and the ensemble ends above CE trained for the same 20 epochs (95.2 % vs 90.8 %: CE
    memorises the noise by then)."""
    cfg = digits_run("dividemix", epochs=20, imbalance=1)
    cfg = dataclasses.replace(cfg, hparams={**cfg.hparams, "warmup_epochs": 3})
    rec = run_trial(cfg)
    assert rec["status"] == "done", rec["error"]
    last = rec["epochs"][-1]
    assert last["test_acc"] > 10.0 + 60.0  # chance is 10 %
    assert last["split_precision_a"] > 90.0 and last["split_precision_b"] > 90.0
    assert last["split_recall_a"] > 70.0
    # each net's own accuracy is recorded beside the ensemble's
    assert {"test_acc_a", "test_acc_b"} <= set(last)
    ce = run_trial(digits_run("ce", epochs=20, imbalance=1))
    assert last["test_acc"] > ce["summary"]["last_acc"]



def test_each_mixmatch_iteration_is_timed_as_one_iteration_of_the_epoch():
    """After warm-up the stream's batches are not drawn: each MixMatch iteration marks a lap."""
    from bench.grid.presets import resolve_hparams
    from bench.train.engine import build_method, train_one_epoch
    from bench.train.stream import BatchStream
    from noisytail_datasets import build_data

    cfg = digits_run("dividemix", epochs=2).with_(hparams=resolve_hparams("dividemix", {"warmup_epochs": 1}))
    bundle = build_data(cfg.data)
    gen = torch.Generator().manual_seed(0)
    method = build_method(cfg, bundle, torch.device("cpu"), gen)
    stream = BatchStream(bundle.train_x, bundle.train_y, cfg.batch_size, method.ctx.transform, gen, with_index=True)
    train_one_epoch(method, stream, 0)
    assert len(stream.intervals) == len(stream)  # warm-up: one interval per drawn batch
    train_one_epoch(method, stream, 1)
    iterations = sum(-(-len(method.split(k)[0]) // method.hp["mix_batch_size"]) for k in (0, 1))
    assert iterations > 0 and len(stream.intervals) == iterations
    assert all(seconds > 0 for seconds in stream.intervals)
