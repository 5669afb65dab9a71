"""Correctness tests for DivideMix (methods/dividemix.py, methods.md §4).

The building blocks and the losses are checked against computations written out here (warm-up
CE + negative entropy, L_x / L_u / R, and where dividemix_bs adds the log prior), the co-divide
against sklearn's GMM with the official settings (constructor arguments and fitted data recorded
by a monkeypatched GaussianMixture), and the MixMatch step's wiring by recording what it does:
the other net's mode and state (forward hooks, a BatchNorm backbone), the λ_u the ramp gives each
iteration, and the logits and prior that reach `mixmatch_loss`. A bias-only toy on CIFAR-10-LT
counts checks that dividemix_bs leaves a balanced test-time prior (and that the previous
version, which adjusted R and L_u too, does not).

The registry-wide tests (tests/methods/test_methods.py) cover a 2-epoch default run, which ends inside
the 10 warm-up epochs. The co-divide + MixMatch phase is pinned by `test_mixmatch_phase_regression`,
a digits run with one warm-up epoch whose numbers live in
tests/golden/runs/dividemix_mixmatch.json. After a deliberate change, regenerate them with

    python tests/golden/regenerate.py dividemix_mixmatch

and review the diff.
"""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_matches_golden, digits_run, golden_numbers
from sklearn.mixture import GaussianMixture

from bench.core.specs import OptimSpec
from bench.nn.backbones import build_backbone
from bench.train.engine import run_trial
from methods import METHODS, Batch, MethodContext, dividemix
from methods.base import Diagnostics
from methods.dividemix import (
    DivideMix,
    DivideMixBalancedSoftmax,
    co_guess,
    co_refine,
    gmm_clean_probability,
    lambda_u_ramp,
    mixmatch,
    mixmatch_loss,
    negative_entropy,
    normalise_losses,
    sharpen,
    uniform_prior_penalty,
    warmup_loss,
)

SIZE = 4  # images are 1 × 4 × 4


def make_method(n: int, num_classes: int = 5, seed: int = 0, cls=DivideMix, clean_y=None, backbone: str = "mlp",
                **hparams) -> DivideMix:
    """A DivideMix on `n` random 4×4 images with random noisy labels (MLP backbone unless told)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    x = torch.randint(0, 256, (n, 1, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    ctx = MethodContext(
        num_classes=num_classes, in_channels=1, image_size=SIZE, epochs=10, batch_size=32,
        steps_per_epoch=-(-n // 32), device=torch.device("cpu"),
        optim=OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4), train_y=y,
        noisy_counts=torch.bincount(y, minlength=num_classes).tolist(),
        model_factory=lambda: build_backbone(backbone, 1, num_classes, SIZE),
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
    assert diag["split_precision_a"] == 100.0
    assert diag["split_recall_a"] == pytest.approx(100.0 * diag["labeled_a"] / 237)


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


def test_balanced_softmax_variant_predicts_and_co_divides_on_raw_logits():
    m = make_method(60, cls=DivideMixBalancedSoftmax)
    assert METHODS.get("dividemix_bs") is DivideMixBalancedSoftmax
    counts = torch.tensor(m.ctx.noisy_counts, dtype=torch.float32).clamp_min(1)
    torch.testing.assert_close(m.training_log_prior, counts.log())
    assert make_method(60).training_log_prior is None
    for net in m.modules():
        net.eval()
    x = torch.rand(3, 1, SIZE, SIZE)
    torch.testing.assert_close(m.predict(x), m.model(x) + m.model_b(x))
    with torch.no_grad():  # co-divide: the plain CE of the raw logits
        raw = F.cross_entropy(m.model(m.ctx.train_x.float() / 255), m.ctx.train_y, reduction="none")
    torch.testing.assert_close(m.per_sample_losses(m.model), raw)


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


# --- training losses (independent computations) -----------------------------------------------
def _ce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, written out: log Σ_c exp z_c − z_y."""
    z = z.double()
    return (z.exp().sum(1).log() - z[torch.arange(len(y)), y]).mean()


def _soft_ce(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    z = z.double()
    return -(t.double() * (z - z.exp().sum(1, keepdim=True).log())).sum(1).mean()


def _softmax(z: torch.Tensor) -> torch.Tensor:
    e = z.double().exp()
    return e / e.sum(1, keepdim=True)


def _neg_entropy(z: torch.Tensor) -> torch.Tensor:
    p = _softmax(z)
    return (p * p.log()).sum(1).mean()


def _uniform_prior(z: torch.Tensor) -> torch.Tensor:
    mean_p = _softmax(z).mean(0)
    c = len(mean_p)
    return ((1.0 / c) * ((1.0 / c) / mean_p).log()).sum()


LOG_PRIOR = torch.tensor([500.0, 100.0, 20.0, 5.0, 1.0]).log()


def _fixed_batch(n: int = 12, n_x: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(n, 5, generator=gen), torch.rand(n, 5, generator=gen).softmax(1)


def test_warmup_loss_is_ce_plus_negative_entropy_only_when_switched_on():
    z, _ = _fixed_batch()
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 4])
    torch.testing.assert_close(warmup_loss(z, y, neg_entropy=False).double(), _ce(z, y))
    torch.testing.assert_close(warmup_loss(z, y, neg_entropy=True).double(), _ce(z, y) + _neg_entropy(z))
    assert float(_neg_entropy(z)) < -0.1  # the penalty is not negligible on these logits
    torch.testing.assert_close(negative_entropy(z).double(), _neg_entropy(z))
    # dividemix_bs: Balanced-Softmax CE, the confidence penalty on the raw (test-time) prediction
    torch.testing.assert_close(warmup_loss(z, y, True, LOG_PRIOR).double(), _ce(z + LOG_PRIOR, y) + _neg_entropy(z))


@pytest.mark.parametrize("cls", [DivideMix, DivideMixBalancedSoftmax])
@pytest.mark.parametrize("neg_entropy", [False, True])
def test_warmup_step_applies_the_switch_and_the_variants_prior(cls, neg_entropy):
    m = make_method(64, cls=cls, neg_entropy_warmup=neg_entropy)
    seen = []
    m.model_b.register_forward_hook(lambda mod, inp, out: seen.append(out.detach().clone()))
    x = m.ctx.transform(m.ctx.train_x[:32])
    loss = m.warmup_step(m.model_b, m.optimizer_b, Batch(x=x, y=m.ctx.train_y[:32]))
    (z,) = seen
    y = m.ctx.train_y[:32]
    prior = torch.tensor(m.ctx.noisy_counts, dtype=torch.float32).log() if cls is DivideMixBalancedSoftmax else 0.0
    expected = _ce(z + prior, y) + (_neg_entropy(z) if neg_entropy else 0.0)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("uniform_prior", [True, False])
def test_mixmatch_loss_parts(uniform_prior):
    z, t = _fixed_batch()
    n_x, lam = 6, 7.5
    parts = mixmatch_loss(z, t, n_x, lam, uniform_prior)
    expected_x, expected_u = _soft_ce(z[:n_x], t[:n_x]), (_softmax(z[n_x:]) - t[n_x:].double()).pow(2).mean()
    expected_r = _uniform_prior(z) if uniform_prior else torch.zeros((), dtype=torch.float64)
    torch.testing.assert_close(parts["loss_x"].double(), expected_x)
    torch.testing.assert_close(parts["loss_u"].double(), expected_u)
    torch.testing.assert_close(parts["penalty"].double(), expected_r)
    torch.testing.assert_close(parts["loss"].double(), expected_x + lam * expected_u + expected_r)


def test_balanced_softmax_mixmatch_loss_adjusts_l_x_only():
    """dividemix_bs: L_x on logits + log prior; L_u and R on the raw logits."""
    z, t = _fixed_batch()
    n_x, lam = 6, 7.5
    parts = mixmatch_loss(z, t, n_x, lam, True, LOG_PRIOR)
    adjusted = z + LOG_PRIOR
    expected_x = _soft_ce(adjusted[:n_x], t[:n_x])
    expected_u = (_softmax(z[n_x:]) - t[n_x:].double()).pow(2).mean()
    expected_r = _uniform_prior(z)
    torch.testing.assert_close(parts["loss_x"].double(), expected_x)
    torch.testing.assert_close(parts["loss_u"].double(), expected_u)
    torch.testing.assert_close(parts["penalty"].double(), expected_r)
    torch.testing.assert_close(parts["loss"].double(), expected_x + lam * expected_u + expected_r)
    # the fixture tells the two apart: the prior changes every part it would enter
    assert abs(float(_soft_ce(z[:n_x], t[:n_x]) - expected_x)) > 0.1
    assert abs(float((_softmax(adjusted[n_x:]) - t[n_x:].double()).pow(2).mean() - expected_u)) > 0.01
    assert abs(float(_uniform_prior(adjusted) - expected_r)) > 0.1


def _cifar10_lt_toy(lambda_u: float, old: bool, steps: int = 150) -> torch.Tensor:
    """The bias-only toy of the module docstring: logits = a learned bias b (10 classes) for every
    row; labeled targets = the one-hot labels of CIFAR-10-LT ρ=100 (5000 … 50, 12,406 rows);
    128 unlabeled targets co-guessed from the raw logits (sharpen(softmax(b), T=0.5), no grad);
    b starts at log π (what a CE warm-up leaves); full-batch SGD (lr 0.1, momentum 0.9) on
    `mixmatch_loss` with R on. `old`: every part on the adjusted logits (the previous dividemix_bs).
    Returns the test-time prior softmax(b)."""
    counts = torch.tensor([int(5000 * 0.01 ** (c / 9)) for c in range(10)])
    assert counts.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    targets_x = F.one_hot(torch.repeat_interleave(torch.arange(10), counts), 10).float()
    log_prior = counts.float().log()
    b = log_prior.clone().requires_grad_(True)
    opt = torch.optim.SGD([b], lr=0.1, momentum=0.9)
    for _ in range(steps):
        with torch.no_grad():
            targets_u = sharpen(b.softmax(0).expand(128, 10), 0.5)
        targets = torch.cat([targets_x, targets_u])
        logits = b.expand(len(targets), 10)
        if old:
            loss = mixmatch_loss(logits + log_prior, targets, len(targets_x), lambda_u, True)["loss"]
        else:
            loss = mixmatch_loss(logits, targets, len(targets_x), lambda_u, True, log_prior)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return b.detach().softmax(0)


@pytest.mark.parametrize("lambda_u", [0.0, 25.0])
def test_balanced_softmax_variant_leaves_a_balanced_test_time_prior_on_a_long_tailed_toy(lambda_u):
    """Measured (module docstring): max/min of softmax(b) 1.002 now, 20.7 (λ_u=0) and 326 (λ_u=25)
    with R and L_u on the adjusted logits, which correct for the long tail a second time."""
    prior = _cifar10_lt_toy(lambda_u, old=False)
    assert float(prior.max() / prior.min()) < 1.05
    old = _cifar10_lt_toy(lambda_u, old=True)
    assert float(old[-1] / old[0]) > 15.0  # the old version favours the tail at test time


# --- co-divide settings -------------------------------------------------------------------------
def _record_gmms(monkeypatch) -> tuple[list[dict], list[np.ndarray]]:
    """Replace the module's GaussianMixture by the real one that records its constructor arguments
    and the data it is fitted on."""
    made, fitted = [], []
    signature = inspect.signature(GaussianMixture)

    def factory(*args, **kwargs):
        made.append(dict(signature.bind(*args, **kwargs).arguments))
        gmm = GaussianMixture(*args, **kwargs)
        fit = gmm.fit
        gmm.fit = lambda x, y=None: (fitted.append(np.array(x, copy=True)), fit(x))[1]
        return gmm

    monkeypatch.setattr(dividemix, "GaussianMixture", factory)
    return made, fitted


def _normalised_eval_losses(net: torch.nn.Module, m: DivideMix) -> torch.Tensor:
    """Eval-mode CE of every training sample on the un-augmented images, min-max normalised."""
    was = net.training
    net.eval()
    with torch.no_grad():
        losses = F.cross_entropy(net(m.ctx.train_x.float() / 255.0), m.ctx.train_y, reduction="none").double()
    net.train(was)
    return (losses - losses.min()) / (losses.max() - losses.min())


def test_co_divide_fits_the_official_gmm_on_min_max_normalised_losses(monkeypatch):
    m = make_method(300, warmup_epochs=0, gmm_seed=3)
    made, fitted = _record_gmms(monkeypatch)
    m.on_epoch_start(0)
    assert made == [{"n_components": 2, "max_iter": 10, "tol": 1e-2, "reg_covar": 5e-4, "random_state": 3}] * 2
    for k, net in enumerate(m.modules()):
        data = _normalised_eval_losses(net, m).numpy().reshape(-1, 1)
        np.testing.assert_allclose(fitted[k], data, rtol=1e-5, atol=1e-6)
        assert fitted[k].min() == 0.0 and fitted[k].max() == pytest.approx(1.0)
        gmm = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=3).fit(data)
        clean = int(np.argmin(gmm.means_.ravel()))  # the smaller-mean component
        expected = gmm.predict_proba(data)[:, clean]
        np.testing.assert_allclose(m.clean_prob[k].numpy(), expected, rtol=1e-4, atol=1e-5)
        assert float(m.clean_prob[k][data.argmin()]) > 0.5 > float(m.clean_prob[k][data.argmax()])


def test_gmm_average_epochs_fits_the_mean_of_the_last_k_normalised_losses(monkeypatch):
    m = make_method(200, warmup_epochs=0, gmm_average_epochs=3)
    _, fitted = _record_gmms(monkeypatch)
    gen = torch.Generator().manual_seed(1)
    own: list[list[torch.Tensor]] = [[], []]
    for epoch in range(5):
        for k, net in enumerate(m.modules()):
            with torch.no_grad():  # a different net every epoch, so the epochs' losses differ
                for p in net.parameters():
                    p.add_(0.3 * torch.randn(p.shape, generator=gen))
            own[k].append(_normalised_eval_losses(net, m))
        m.on_epoch_start(epoch)
        for k in (0, 1):
            expected = torch.stack(own[k][-3:]).mean(0).numpy().reshape(-1, 1)
            np.testing.assert_allclose(fitted[2 * epoch + k], expected, rtol=1e-5, atol=1e-6)
            assert len(m.loss_history[k]) == min(epoch + 1, 3)
    assert not np.allclose(fitted[-1], own[1][-1].numpy().reshape(-1, 1), atol=1e-3)  # the mean, not the last


def test_split_diagnostics_only_after_warmup_and_describe_the_split_trained_on():
    m = make_method(150, warmup_epochs=2)
    for epoch in (0, 1):
        m.on_epoch_start(epoch)
        m.train_step(Batch(x=m.ctx.transform(m.ctx.train_x[:32]), y=m.ctx.train_y[:32], index=torch.arange(32)), epoch)
        assert m.ctx.diagnostics.pop() == {}  # no GMM was fitted, no split was used
        assert all(torch.equal(p, torch.ones(150)) for p in m.clean_prob)
    m.on_epoch_start(2)
    d = m.ctx.diagnostics.pop()
    assert set(d) == {f"{key}_{net}" for key in ("labeled", "split_precision", "split_recall") for net in "ab"}
    # A's GMM makes B's labeled set and vice versa
    assert d["labeled_a"] == len(m.split(1)[0]) and d["labeled_b"] == len(m.split(0)[0])


# --- the MixMatch step's wiring -----------------------------------------------------------------
def _bn_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("k", [0, 1])
def test_mixmatch_step_freezes_the_other_net_in_eval_mode(k):
    m = make_method(200, warmup_epochs=0, backbone="resnet32")
    assert any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.model.modules())
    net, other = m.modules()[k], m.modules()[1 - k]
    net.eval()  # the step sets the modes itself
    other.train()
    calls: dict[str, list[tuple[bool, bool]]] = {"net": [], "other": []}
    for name, module in (("net", net), ("other", other)):
        def hook(mod, inp, out, name=name):
            bn_modes = {b.training for b in mod.modules() if isinstance(b, torch.nn.BatchNorm2d)}
            assert bn_modes == {mod.training}
            calls[name].append((mod.training, torch.is_grad_enabled()))
        module.register_forward_hook(hook)
    before, net_before = _bn_state(other), _bn_state(net)
    m.mixmatch_step(k, torch.arange(0, 20), torch.full((20,), 0.8), torch.arange(100, 120), progress=3.0)
    assert calls["other"] and all(call == (False, False) for call in calls["other"])  # eval, no grad
    assert all(training for training, _ in calls["net"])  # co-guess/refine (official) and training forward
    assert [grad for _, grad in calls["net"]].count(True) == 1  # one training forward, on the mixed batch
    after = other.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)  # weights and BN statistics
    assert all(p.grad is None for p in other.parameters())
    assert any(not torch.equal(net_before[key], v) for key, v in net.state_dict().items() if "running" in key)


def _capture_mixmatch_loss(monkeypatch) -> list[dict]:
    seen: list[dict] = []

    def recording(logits, targets, n_x, lambda_u, uniform_prior, log_prior=None):
        parts = mixmatch_loss(logits, targets, n_x, lambda_u, uniform_prior, log_prior)
        seen.append({"logits": logits, "n_x": n_x, "lambda_u": lambda_u, "uniform_prior": uniform_prior,
                     "log_prior": log_prior, "loss": parts["loss"].detach()})
        return parts

    monkeypatch.setattr(dividemix, "mixmatch_loss", recording)
    return seen


@pytest.mark.parametrize(("n_labeled", "iters", "num_iter"), [(128, 2, 3), (150, 3, 3), (40, 1, 1)])
def test_lambda_u_ramp_follows_the_official_num_iter(monkeypatch, n_labeled, iters, num_iter):
    """progress = epoch + it / (|labeled| // 64 + 1), λ_u(t) = λ_u · clip((progress − W) / 16, 0, 1)."""
    seen = _capture_mixmatch_loss(monkeypatch)
    m = make_method(300, warmup_epochs=2, lambda_u=50.0)
    m.clean_prob = [torch.zeros(300), torch.zeros(300)]
    m.clean_prob[1][:n_labeled] = 0.9  # net A's labeled set, made by B
    epoch = 5
    losses = list(m.train_net_epoch(0, epoch))
    assert len(losses) == iters == -(-n_labeled // 64) and num_iter == n_labeled // 64 + 1
    expected = [50.0 * min(max((epoch + it / num_iter - 2) / 16, 0.0), 1.0) for it in range(iters)]
    assert [s["lambda_u"] for s in seen] == pytest.approx(expected, abs=1e-12)
    assert [float(s["loss"]) for s in seen] == pytest.approx([float(v) for v in losses])


@pytest.mark.parametrize("cls", [DivideMix, DivideMixBalancedSoftmax])
def test_mixmatch_step_passes_raw_logits_and_the_variants_prior(monkeypatch, cls):
    seen = _capture_mixmatch_loss(monkeypatch)
    m = make_method(200, cls=cls, warmup_epochs=0)
    outputs = []
    m.model.register_forward_hook(lambda mod, inp, out: outputs.append(out) if torch.is_grad_enabled() else None)
    loss = m.mixmatch_step(0, torch.arange(20), torch.full((20,), 0.7), torch.arange(100, 115), progress=20.0)
    (call,) = seen
    (raw,) = outputs
    assert call["logits"] is raw or torch.equal(call["logits"], raw)  # the net's own logits, unadjusted
    assert call["n_x"] == 40 and len(raw) == 40 + 30 and call["uniform_prior"] is True
    assert call["lambda_u"] == pytest.approx(25.0)  # ramp complete at epoch 20 (W = 0)
    if cls is DivideMixBalancedSoftmax:
        counts = torch.tensor(m.ctx.noisy_counts, dtype=torch.float32)
        torch.testing.assert_close(call["log_prior"], counts.log())
    else:
        assert call["log_prior"] is None
    assert float(loss) == float(call["loss"])


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
