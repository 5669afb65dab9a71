"""FSR (methods/fsr.py): dictionary, refresh, weights, the FC-only meta gradient, BN handling,
and a short exact-value regression of the meta phase.

The regression numbers live in tests/golden/runs/fsr_meta_phase.json; after a deliberate
change regenerate them with `python tests/golden/regenerate.py fsr_meta_phase` and review the diff.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_matches_golden, digits_run, golden_numbers

from bench.core.errors import UsageError
from bench.core.specs import OptimSpec
from bench.grid.presets import resolve_hparams
from bench.nn.backbones import build_backbone
from bench.train.engine import build_method
from methods import METHODS, Batch, MethodContext
from methods.base import Diagnostics
from methods.bilevel import VirtualSGD
from methods.fsr import (
    FSR,
    FSR_LT,
    FSR_LT_NOISE,
    fc_meta_gradient,
    lowest_per_class,
    mixup,
    normalized_weights,
    rms_normalize,
)
from noisytail_datasets import build_data

#: the meta phase from epoch 0 and a dictionary small enough (10 per class) that refreshes matter
NUM_CLASSES = 4


class TinyBNNet(torch.nn.Module):
    """conv → BatchNorm → ReLU → pool → FC: the smallest backbone with BN statistics."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def make_fsr(labels: torch.Tensor, backbone: str = "mlp", size: int = 8, **hparams) -> FSR:
    """An FSR on random uint8 images with the given noisy labels (identity-like transform)."""
    gen = torch.Generator().manual_seed(0)
    n, c = len(labels), int(labels.max()) + 1
    factory = (lambda: TinyBNNet(c)) if backbone == "tiny_bn" else (lambda: build_backbone(backbone, 1, c, size))
    ctx = MethodContext(
        num_classes=c, in_channels=1, image_size=size, epochs=5, batch_size=16, steps_per_epoch=n // 16,
        device=torch.device("cpu"), optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4), train_y=labels,
        noisy_counts=torch.bincount(labels, minlength=c).tolist(),
        model_factory=factory,
        transform=lambda t, train=True, generator=None: t.float() / 255.0, generator=gen,
        diagnostics=Diagnostics(labels),
        train_x=torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=gen),
    )
    return FSR(ctx, {**FSR.defaults, **hparams})


def imbalanced_labels() -> torch.Tensor:
    """Shuffled labels with 40/30/20/6 samples in classes 0..3 (class 3 is short)."""
    labels = torch.cat([torch.full((k,), c) for c, k in enumerate((40, 30, 20, 6))])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(3))]


def step_batch(method: FSR, index: torch.Tensor) -> Batch:
    ctx = method.ctx
    return Batch(x=ctx.transform(ctx.train_x[index]), y=ctx.train_y[index], index=index)


def per_class_counts(labels: torch.Tensor) -> list[int]:
    return torch.bincount(labels, minlength=NUM_CLASSES).tolist()


# --- registry ----------------------------------------------------------------------------------
def test_registered_without_clean_data_and_with_indices():
    cls = METHODS.get("fsr")
    assert cls is FSR and not cls.uses_meta_set and cls.uses_indices
    cfg = digits_run("fsr")
    method = build_method(cfg, build_data(cfg.data), torch.device("cpu"), torch.Generator().manual_seed(0))
    assert method.ctx.meta_x is None and method.ctx.meta_y is None


def test_override_dicts_name_existing_hyperparameters():
    for overrides in (FSR_LT, FSR_LT_NOISE):
        resolve_hparams("fsr", overrides)  # raises on an unknown key
    assert FSR_LT["weight_mode"] == "shift" and not FSR_LT["mixup"] and FSR_LT["relabel_weight"] == 0
    assert FSR.defaults["dictionary_size"] == 2000 and FSR.defaults["probe_size"] == 200


def test_refuses_a_probe_batch_larger_than_the_dictionary():
    hparams = resolve_hparams("fsr", {"dictionary_size": 100, "probe_size": 200})
    with pytest.raises(UsageError) as err:
        FSR.check_run(hparams, 30)
    assert "probe_size=200" in str(err.value) and "dictionary_size=100" in str(err.value)
    assert "\n" not in str(err.value)
    FSR.check_run(resolve_hparams("fsr", {"dictionary_size": 100, "probe_size": 100}), 30)
    FSR.check_run(resolve_hparams("fsr"), 30)


# --- dictionary ---------------------------------------------------------------------------------
def test_initial_dictionary_is_class_balanced_by_noisy_label():
    labels = imbalanced_labels()
    method = make_fsr(labels, dictionary_size=40)  # 10 per class; class 3 has only 6: all of them
    d = method.dictionary
    assert per_class_counts(d.labels) == [10, 10, 10, 6]
    assert torch.equal(d.labels, labels[d.index])
    assert len(d.index.unique()) == len(d.index)
    assert torch.equal(d.index[d.labels == 3].sort().values, torch.nonzero(labels == 3).squeeze(1))
    assert torch.equal(d.images, method.ctx.transform(method.ctx.train_x[d.index]))


def test_refresh_picks_the_lowest_running_scores_per_class():
    labels = imbalanced_labels()
    method = make_fsr(labels, dictionary_size=40)
    scores = torch.randn(len(labels), generator=torch.Generator().manual_seed(5))
    method.scores.copy_(scores)
    method.scored.fill_(True)
    method.scored[torch.nonzero(labels == 0).squeeze(1)[:3]] = False  # never trained on: ranked last
    method.steps_since_refresh = 1
    method.on_epoch_start(1)
    d = method.dictionary
    assert per_class_counts(d.labels) == [10, 10, 10, 6]
    assert torch.equal(d.labels, labels[d.index])
    for c in range(NUM_CLASSES):
        members = [i for i in range(len(labels)) if labels[i] == c and method.scored[i]]
        expected = sorted(members, key=lambda i: scores[i].item())[:10]
        assert sorted(d.index[d.labels == c].tolist()) == sorted(expected)


def test_refresh_only_after_a_trained_epoch():
    method = make_fsr(imbalanced_labels(), dictionary_size=40)
    before = method.dictionary.index.clone()
    method.scores.copy_(torch.randn(len(method.scores)))
    method.on_epoch_start(0)  # nothing trained yet: the initial random dictionary stays
    assert torch.equal(method.dictionary.index, before)


def test_dictionary_stays_balanced_through_training():
    labels = imbalanced_labels()
    method = make_fsr(labels, dictionary_size=40, probe_size=8)
    for epoch in range(2):
        method.on_epoch_start(epoch)
        assert per_class_counts(method.dictionary.labels) == [10, 10, 10, 6]
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(epoch))
        for start in range(0, len(labels), 16):
            method.train_step(step_batch(method, order[start : start + 16]), epoch)
    assert method.scored.all()


def test_probe_batch_is_class_balanced():
    labels = imbalanced_labels()
    method = make_fsr(labels, dictionary_size=40, probe_size=32)  # 8 per class; class 3 holds 6
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x, y = method.dictionary.probe(gen)
        assert per_class_counts(y) == [8, 8, 8, 8]
        pos = [torch.nonzero(torch.all(method.dictionary.images.flatten(1) == row, dim=1)).squeeze(1)
               for row in x.flatten(1)]
        full = [p.item() for p, c in zip(pos, y.tolist()) if c != 3]
        assert len(set(full)) == len(full)  # without replacement where the class is big enough


def test_lowest_per_class_orders_by_class_and_score():
    labels = torch.tensor([1, 0, 1, 0, 1, 0])
    scores = torch.tensor([3.0, 2.0, 1.0, 0.0, 2.0, 5.0])
    assert lowest_per_class(labels, scores, 2, 2).tolist() == [3, 1, 2, 4]


# --- weights --------------------------------------------------------------------------------------
def test_clipped_weights_are_nonnegative_and_sum_to_one():
    grad = torch.randn(50, generator=torch.Generator().manual_seed(0))
    eps = torch.full((50,), 1 / 50)
    w = normalized_weights(grad, eps, "clip")
    positive = (-grad).clamp_min(0)
    assert (w >= 0).all() and torch.equal(w == 0, grad >= 0)
    assert torch.allclose(w, positive / (positive.sum() + 1e-5))
    assert w.sum().item() == pytest.approx(1.0, abs=1e-4)


def test_shifted_weights_are_positive():
    grad = torch.randn(50, generator=torch.Generator().manual_seed(1))
    eps = torch.full((50,), 1 / 50)
    w = normalized_weights(grad, eps, "shift")
    assert (w > 0).all() and w.sum().item() == pytest.approx(1.0, abs=1e-4)
    raw = eps - grad
    assert torch.allclose(w, (raw - raw.min() + eps) / (raw - raw.min() + eps).sum().add(1e-5))


@pytest.mark.parametrize("mode", ["clip", "shift"])
def test_weights_of_a_real_step(mode, monkeypatch):
    method = make_fsr(imbalanced_labels(), dictionary_size=40, probe_size=8, weight_mode=mode)
    seen = []
    original = method._meta_weights
    monkeypatch.setattr(method, "_meta_weights", lambda *a: (out := original(*a), seen.append(out[0]))[0])
    for start in (0, 16, 32):
        method.train_step(step_batch(method, torch.arange(start, start + 16)), 0)
    for w in seen:  # Σ w = S / (S + 1e-5) for the unnormalised sum S (small on random images)
        assert (w >= 0).all() if mode == "clip" else (w > 0).all()
        assert 0.99 < w.sum().item() <= 1.0
    assert len(seen) == 3


def test_uniform_weights_before_meta_start(monkeypatch):
    method = make_fsr(imbalanced_labels(), dictionary_size=40, probe_size=8, meta_start_epoch=2, mixup=False,
                      relabel_weight=0.0)
    index = torch.arange(16)
    batch = step_batch(method, index)
    logits = method.model(batch.x).detach()  # MLP: no BN, so this is the step's forward
    expected = F.cross_entropy(logits, batch.y)
    assert method.train_step(batch, 1).item() == pytest.approx(expected.item(), rel=1e-6)


# --- the FC-only meta gradient --------------------------------------------------------------------
def reference_meta_loss(eps, h, t, hp, tp, weight, bias, buf_w, buf_b, eta, mu, wd):
    """L_meta(ε) written out by hand: the analytic FC gradient, meta momentum, L2 terms."""
    p = torch.softmax(h @ weight.T + bias, dim=1)
    d = eps[:, None] * (p - t)
    g_w, g_b = d.T @ h + wd * weight, d.sum(0) + wd * bias
    new_w, new_b = weight - eta * (mu * buf_w + g_w), bias - eta * (mu * buf_b + g_b)
    logp = torch.log_softmax(hp @ new_w.T + new_b, dim=1)
    return -(tp * logp).sum(1).mean() + wd / 2 * (new_w.square().sum() + new_b.square().sum())


def test_fc_meta_gradient_matches_central_finite_differences():
    torch.manual_seed(0)
    dt = torch.float64
    b, q, k, c = 6, 8, 5, 3
    fc = torch.nn.Linear(k, c).to(dt)
    h, hp = torch.randn(b, k, dtype=dt), torch.randn(q, k, dtype=dt)
    t = torch.softmax(torch.randn(b, c, dtype=dt), 1)  # soft (mixup-like) targets
    tp = F.one_hot(torch.randint(0, c, (q,)), c).to(dt) * 0.9 + 0.1 / c  # label smoothing
    buffers = {"weight": torch.randn(c, k, dtype=dt) * 0.1, "bias": torch.randn(c, dtype=dt) * 0.1}
    eta, mu, wd = 0.1, 0.9, 5e-4
    eps = torch.full((b,), 1 / b, dtype=dt, requires_grad=True)
    grad, fast, loss = fc_meta_gradient(fc, h, t, eps, hp, tp, eta, VirtualSGD(mu, wd), buffers, meta_l2=wd)

    args = (h, t, hp, tp, fc.weight.detach(), fc.bias.detach(), buffers["weight"], buffers["bias"], eta, mu, wd)
    base = eps.detach()
    assert loss.item() == pytest.approx(reference_meta_loss(base, *args).item(), rel=1e-12)
    step = 1e-6
    fd = torch.stack([
        (reference_meta_loss(base + step * e, *args) - reference_meta_loss(base - step * e, *args)) / (2 * step)
        for e in torch.eye(b, dtype=dt)
    ])
    assert torch.allclose(grad, fd, rtol=1e-6, atol=1e-10)
    assert (grad - fd).norm() / fd.norm() < 1e-4


def test_meta_forward_leaves_bn_running_statistics_to_the_real_forward():
    labels = imbalanced_labels()
    for bn, expected in (("scratch", 1), ("real", 2)):
        method = make_fsr(labels, backbone="tiny_bn", dictionary_size=40, probe_size=8, bn=bn)
        method.train_step(step_batch(method, torch.arange(16)), 0)
        tracked = {int(m.num_batches_tracked) for m in method.model.modules()
                   if isinstance(m, torch.nn.BatchNorm2d)}
        assert tracked == {expected}


# --- re-labelling and mixup -----------------------------------------------------------------------
def test_rms_normalize_and_the_ema_logit_table():
    v = torch.randn(7, 3) * 5
    assert rms_normalize(v).square().mean().item() == pytest.approx(1.0, rel=1e-6)
    method = make_fsr(imbalanced_labels(), dictionary_size=40, probe_size=8)
    index = torch.arange(10, 26)
    method.train_step(step_batch(method, index), 0)
    touched = method.ema_logits.abs().sum(1) > 0
    assert touched[index].all() and touched.sum() == len(index)
    assert make_fsr(imbalanced_labels(), **FSR_LT).ema_logits is None


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_mixup_is_the_codes_mix_from_the_same_draws(beta):
    """m = max(u^(1/β)/2, 1 − u^(1/β)/2) per sample, partner = a permutation (custom_ops.MixMode),
    replayed from the same generator draws (u first, then the permutation)."""
    n, c = 12, 5
    x = torch.randn(n, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    t = F.one_hot(torch.arange(n) % c, c).float()
    xm, tm = mixup(x, t, beta, torch.Generator().manual_seed(4))
    replay = torch.Generator().manual_seed(4)
    u, partner = torch.rand(n, generator=replay), torch.randperm(n, generator=replay)
    assert not torch.equal(partner, torch.arange(n))
    for i in range(n):
        half = u[i].item() ** (1 / beta) / 2
        m = max(half, 1 - half)
        assert torch.allclose(xm[i], m * x[i] + (1 - m) * x[partner[i]], atol=1e-6)
        assert torch.allclose(tm[i], m * t[i] + (1 - m) * t[partner[i]], atol=1e-6)


def test_relabel_loss_reads_the_table_before_this_step_then_updates_it():
    """Pseudo label softmax(rms(e_i)/T) of the table as it was; then e_i ← β·rms(e_i) + (1 − β)·z_i
    (fsr.py `compute_pseudo_loss`: the loss uses the gathered `ema_logit`, the scatter comes after)."""
    method = make_fsr(imbalanced_labels(), dictionary_size=40, relabel_momentum=0.1, relabel_temperature=2.0)
    gen = torch.Generator().manual_seed(6)
    table = torch.randn(96, NUM_CLASSES, generator=gen) * 3
    method.ema_logits.copy_(table)
    index = torch.tensor([1, 5, 9, 30])
    z = torch.randn(4, NUM_CLASSES, generator=gen, requires_grad=True)
    for active in (False, True):
        method.ema_logits.copy_(table)
        loss = method._relabel_loss(z, index, active)
        old = table[index]
        normed = old / (old.square().mean() + 1e-8).sqrt()  # RMS over the whole gathered b×C block
        pseudo = normed.div(2.0).exp() / normed.div(2.0).exp().sum(1, keepdim=True)
        log_p = z - z.exp().sum(1, keepdim=True).log()
        want = 2.0 * -(pseudo * log_p).sum(1).mean() if active else torch.tensor(0.0)
        assert loss.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-7)
        assert torch.allclose(method.ema_logits[index], 0.1 * normed + 0.9 * z.detach(), atol=1e-5)
        untouched = torch.ones(96, dtype=torch.bool)
        untouched[index] = False
        assert torch.equal(method.ema_logits[untouched], table[untouched])
    (grad,) = torch.autograd.grad(loss, z)  # pseudo labels are constants: p/b·(softmax(z) − pseudo)
    assert torch.allclose(grad, 2.0 / 4 * (z.softmax(1) - pseudo).detach(), atol=1e-6)


def test_ema_table_takes_the_mixed_training_logits(monkeypatch):
    import methods.fsr as fsr_module

    method = make_fsr(imbalanced_labels(), dictionary_size=40, probe_size=8)  # mixup on, MLP (no BN)
    table = torch.randn(96, NUM_CLASSES, generator=torch.Generator().manual_seed(8))
    method.ema_logits.copy_(table)
    seen = {}

    def spy(x, targets, beta, generator):
        x_mix, t_mix = mixup(x, targets, beta, generator)
        with torch.no_grad():
            seen["z"] = method.model(x_mix)  # θ before the step
        return x_mix, t_mix

    monkeypatch.setattr(fsr_module, "mixup", spy)
    index = torch.arange(20, 36)
    method.train_step(step_batch(method, index), 0)
    old = table[index]
    want = 0.1 * old / (old.square().mean() + 1e-8).sqrt() + 0.9 * seen["z"]
    assert torch.allclose(method.ema_logits[index], want, atol=1e-5)


# --- the meta-margin pusher -----------------------------------------------------------------------
def hand_meta_margin(costs, features, fast_fc, y):
    """P_i = c_i − c_i^meta with c^meta = logsumexp(z_i) − z_{i,y_i}, z = h W^T + b (θ̂'s FC)."""
    z = features @ fast_fc["weight"].T + fast_fc["bias"]
    return costs - (z.exp().sum(1).log() - z[torch.arange(len(y)), y])


def random_fc_case(method: FSR, index: torch.Tensor, seed: int):
    gen = torch.Generator().manual_seed(seed)
    k = method.model.fc.in_features
    fast_fc = {"weight": torch.randn(NUM_CLASSES, k, generator=gen) * 0.2,
               "bias": torch.randn(NUM_CLASSES, generator=gen)}
    features = torch.randn(len(index), k, generator=gen) * 0.2
    costs = torch.rand(len(index), generator=gen) * 3
    return costs, features, fast_fc


@pytest.mark.parametrize("lam", [0.9, 1.0])
def test_update_scores_is_the_momentum_of_minus_the_meta_margin(lam):
    labels = imbalanced_labels()
    method = make_fsr(labels, dictionary_size=40, pusher_momentum=lam)
    index = torch.tensor([3, 11, 20, 42, 57, 90])
    costs, features, fast_fc = random_fc_case(method, index, seed=7)
    previous = torch.randn(len(index), generator=torch.Generator().manual_seed(9))
    method.scores[index] = previous
    method._update_scores(index, costs, features, fast_fc, labels[index])
    margin = hand_meta_margin(costs, features, fast_fc, labels[index])
    assert (margin > 0).any() and (margin < 0).any()  # the sign matters in this case
    # queue_beta < 1: r ← λ r + (1 − λ)(−P); queue_beta ≥ 1: r ← r + λ(−P) (fsr.py Queue._update_scores)
    want = lam * previous + (1 - lam) * -margin if lam < 1 else previous + lam * -margin
    assert torch.allclose(method.scores[index], want, atol=1e-5)
    assert method.scored[index].all() and method.scored.sum() == len(index)


def test_refresh_keeps_the_largest_momentum_meta_margin():
    labels = imbalanced_labels()
    method = make_fsr(labels, dictionary_size=40)
    index = torch.arange(len(labels))
    costs, features, fast_fc = random_fc_case(method, index, seed=11)
    for _ in range(2):  # r = −(1 − 0.9²)·P: ranks as −P
        method._update_scores(index, costs, features, fast_fc, labels)
    method.on_epoch_start(1)
    margin = hand_meta_margin(costs, features, fast_fc, labels)
    d = method.dictionary
    for c in range(NUM_CLASSES):
        members = torch.nonzero(labels == c).squeeze(1).tolist()
        largest = sorted(members, key=lambda i: -margin[i].item())[:10]
        assert sorted(d.index[d.labels == c].tolist()) == sorted(largest)


# --- diagnostics and evaluation -------------------------------------------------------------------
def test_weight_statistics_only_for_epochs_that_applied_the_weights(monkeypatch):
    method = make_fsr(imbalanced_labels(), dictionary_size=40, probe_size=8, meta_start_epoch=1)
    seen = []
    original = method._meta_weights
    monkeypatch.setattr(method, "_meta_weights", lambda *a: (out := original(*a), seen.append(out[0]))[0])
    for epoch in range(2):
        seen.clear()
        method.on_epoch_start(epoch)
        method.train_epoch(epoch, [step_batch(method, torch.arange(s, s + 16)) for s in range(0, 48, 16)])
        values = method.ctx.diagnostics.pop()
        assert "meta_loss" in values and "dict_purity" in values
        if epoch == 0:  # uniform 1/b applied: the meta weights' zeros describe nothing that happened
            assert "zero_weight_pct" not in values and "relabel_acc" not in values  # nor the unused pseudo labels
            assert any((w == 0).any() for w in seen)  # ... though the unused meta weights had some
        else:
            want = 100.0 * sum((w == 0).float().mean().item() for w in seen) / len(seen)
            assert values["zero_weight_pct"] == pytest.approx(want, abs=1e-4)
            assert "relabel_acc" in values


def test_predict_uses_an_ema_of_the_weights_with_tf_decay():
    """TF ExponentialMovingAverage(d, global_step): decay min(d, (1 + n)/(10 + n)) for update n;
    BN running statistics are the raw model's. d = 0.5 so that the cap applies from n = 8."""
    method = make_fsr(imbalanced_labels(), backbone="tiny_bn", dictionary_size=40, probe_size=8, ema_decay=0.5)
    ema = {k: p.detach().clone() for k, p in method.model.named_parameters()}
    for n in range(10):
        start = 16 * (n % 6)
        method.train_step(step_batch(method, torch.arange(start, start + 16)), 0)
        decay = min(0.5, (1 + n) / (10 + n))
        ema = {k: decay * ema[k] + (1 - decay) * p.detach() for k, p in method.model.named_parameters()}
    reference = copy.deepcopy(method.model)
    with torch.no_grad():
        for k, p in reference.named_parameters():
            p.copy_(ema[k])
    reference.eval()
    method.model.eval()
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    running = method.model.bn.running_mean.clone()
    got = method.predict(x)
    assert torch.allclose(got, reference(x), atol=1e-5)
    assert not torch.allclose(got, method.model(x), atol=1e-3)  # the EMA is not the raw model
    assert torch.equal(method.model.bn.running_mean, running)


# --- digits runs ----------------------------------------------------------------------------------
def test_meta_phase_run_is_above_chance_and_matches_golden_numbers():
    got = golden_numbers("fsr_meta_phase")
    assert got["test_acc"][-1] > 20.0  # 10 classes: chance is 10 %
    assert_matches_golden("fsr_meta_phase", got)

