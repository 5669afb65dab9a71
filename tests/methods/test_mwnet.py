"""MW-Net: one step equals the official three-step procedure, one meta step against a literal
port of the official virtual/meta step and a hand-written optimiser step, weighting rules, the
LT and WRN-28-10 settings.

The models are ResNet-32's class with one block per stage (BatchNorm included) on 8×8 inputs,
so that a step takes milliseconds.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import digits_run, small_resnet_context
from torch import Tensor, nn

from bench.grid.presets import resolve_hparams
from bench.train.engine import run_trial
from methods import Batch
from methods.mwnet import MWNET_LT, MWNET_WRN, MWNet, WeightNet, build_meta_optimizer, weighted_mean

CLASSES = 4


def make_mwnet(**hp) -> tuple[MWNet, Batch, tuple[Tensor, Tensor]]:
    """MW-Net on a one-block-per-stage ResNet-32 with a fixed seed, a training and a meta batch."""
    ctx = small_resnet_context(CLASSES, meta_repeats=5)
    gen, train_y, meta_y = ctx.generator, ctx.train_y, ctx.meta_y
    torch.manual_seed(0)
    method = MWNet(ctx, resolve_hparams("mwnet", hp))
    x = torch.randn(16, 1, 8, 8, generator=gen)
    xm = torch.randn(len(meta_y), 1, 8, 8, generator=gen)
    return method, Batch(x=x, y=train_y[:16]), (xm, meta_y)


def reference_weighted_loss(losses: Tensor, v: Tensor, norm: str) -> Tensor:
    """The scripts' weighted loss, written out: Σvℓ/n (noise script) or Σvℓ/Σv (LT, WRN)."""
    return (v * losses).sum() / (len(losses) if norm == "mean" else v.sum())


def vnet_forward(phi: list[Tensor], losses: Tensor) -> Tensor:
    """VNet(ℓ) = sigmoid(W2·relu(W1·ℓ + b1) + b2) from explicit parameters (official `VNet`)."""
    w1, b1, w2, b2 = phi
    return torch.sigmoid(F.linear(F.relu(F.linear(losses[:, None], w1, b1)), w2, b2)).squeeze(1)


def set_param(module: nn.Module, name: str, value: Tensor) -> None:
    """Replace a parameter by a plain tensor, as the official `MetaModule.set_param` does."""
    *path, leaf = name.split(".")
    for part in path:
        module = getattr(module, part)
    del module._parameters[leaf]
    setattr(module, leaf, value)


def official_meta_gradient(method: MWNet, batch: Batch, meta: tuple[Tensor, Tensor]) -> list[Tensor]:
    """∂L_meta/∂φ as the official scripts compute it: a throw-away copy of the model, the weighted
    loss, `autograd.grad(create_graph=True)`, `update_params` (θ̂ = θ − α·g on the copy), the meta
    forward of the copy in train mode, backward to φ."""
    hp = method.hp
    twin = copy.deepcopy(method.model)
    phi = [p.detach().clone().requires_grad_() for p in method.vnet.parameters()]
    losses = F.cross_entropy(twin(batch.x), batch.y, reduction="none")
    v = vnet_forward(phi, losses.detach() if hp["detach_loss_input"] else losses)
    loss = reference_weighted_loss(losses, v, hp["weight_norm"])
    names = [n for n, _ in twin.named_parameters()]
    grads = torch.autograd.grad(loss, list(twin.parameters()), create_graph=True)
    lr = method.optimizer.param_groups[0]["lr"]
    for name, p, g in zip(names, list(twin.parameters()), grads):
        set_param(twin, name, p - lr * g)
    meta_loss = F.cross_entropy(twin(meta[0]), meta[1])
    return list(torch.autograd.grad(meta_loss, phi))


def first_optimizer_step(phi: Tensor, grad: Tensor, hp: dict) -> Tensor:
    """φ after the first step of the meta optimiser, written out: Adam's bias-corrected first
    step is lr·g'/(|g'| + eps); SGD's first momentum buffer is g' (Nesterov: g' + μ·g')."""
    g = grad + hp["meta_weight_decay"] * phi
    if hp["meta_optimizer"] == "adam":
        return phi - hp["meta_lr"] * g / (g.abs() + 1e-8)
    step = g + hp["meta_momentum"] * g if hp["meta_nesterov"] else g
    return phi - hp["meta_lr"] * step


@pytest.mark.parametrize("route", ["jvp", "unrolled"])
@pytest.mark.parametrize("hp", [{}, MWNET_LT, MWNET_WRN], ids=["noise", "lt", "wrn"])
def test_one_meta_step_moves_phi_by_the_official_meta_gradient(hp, route):
    """Both routes of the meta gradient against the official scripts' double backward."""
    method, batch, meta = make_mwnet(**hp, meta_grad=route)
    method.meta.next = lambda: meta
    phi0 = [p.detach().clone() for p in method.vnet.parameters()]
    theta0 = {k: t.clone() for k, t in method.model.state_dict().items()}
    want_grads = official_meta_gradient(method, batch, meta)

    logits = method.model(batch.x)
    theta0_after_forward = {k: t.clone() for k, t in method.model.state_dict().items()}
    method.meta_step(method.virtual_step(batch, logits, F.cross_entropy(logits, batch.y, reduction="none")))
    for p, want in zip(method.vnet.parameters(), want_grads):
        assert want.abs().max() > 0
        torch.testing.assert_close(p.grad, want, rtol=1e-4, atol=1e-6 * want.abs().max().item())
    for p, p0, want in zip(method.vnet.parameters(), phi0, want_grads):
        torch.testing.assert_close(p.detach(), first_optimizer_step(p0, want, method.hp), rtol=1e-5, atol=1e-8)
    # the virtual and meta forwards leave θ and the BN statistics alone (only the real forward counts)
    for k, t in method.model.state_dict().items():
        assert torch.equal(t, theta0_after_forward[k]), k
    assert not torch.equal(theta0["bn1.running_mean"], theta0_after_forward["bn1.running_mean"])


def official_step(model, vnet, opt, meta_opt, batch, meta, lr, norm, detach):
    """The official loop: virtual step on a throw-away copy, meta step, then a fresh forward."""
    twin = copy.deepcopy(model)
    losses = F.cross_entropy(twin(batch.x), batch.y, reduction="none")
    v = vnet(losses.detach() if detach else losses)
    loss = reference_weighted_loss(losses, v, norm)
    names = [n for n, _ in twin.named_parameters()]
    grads = torch.autograd.grad(loss, list(twin.parameters()), create_graph=True)
    for name, p, g in zip(names, list(twin.parameters()), grads):
        set_param(twin, name, p - lr * g)
    meta_loss = F.cross_entropy(twin(meta[0]), meta[1])
    meta_opt.zero_grad()
    meta_loss.backward()
    meta_opt.step()
    losses = F.cross_entropy(model(batch.x), batch.y, reduction="none")
    with torch.no_grad():
        v = vnet(losses)
    loss = reference_weighted_loss(losses, v, norm)
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("hp", [{}, MWNET_LT, MWNET_WRN], ids=["noise", "lt", "wrn"])
def test_one_shared_forward_step_equals_the_official_two_forward_step(hp):
    method, batch, meta = make_mwnet(**hp)
    model, vnet = copy.deepcopy(method.model), copy.deepcopy(method.vnet)
    vnet_start = copy.deepcopy(method.vnet)
    opt = method.ctx.build_optimizer(model.parameters())
    meta_opt = build_meta_optimizer(vnet.parameters(), method.hp)
    method.meta.next = lambda: meta
    for _ in range(2):
        method.train_step(batch, 0)
        official_step(model, vnet, opt, meta_opt, batch, meta, method.current_lr(),
                      method.hp["weight_norm"], method.hp["detach_loss_input"])
    for (name, a), b in zip(method.model.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    for a, b in zip(method.vnet.parameters(), vnet.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(vnet.parameters(), vnet_start.parameters()))  # V learned


def test_wrn_setting_names_valid_hyperparameters_and_builds_the_scripts_meta_optimizer():
    """`train_WRN-28-10_Meta_PGC.py`: SGD(vnet, 1e-3, momentum 0.9, nesterov, wd 5e-4), Σv, detached input,
    `next(iter(train_meta_loader))` every step."""
    assert resolve_hparams("mwnet", MWNET_WRN) == {**MWNet.defaults, **MWNET_WRN}
    resolve_hparams("famus", MWNET_WRN)  # the famus-table1 preset gives it to FaMUS too
    method, _, _ = make_mwnet(**MWNET_WRN)
    opt = method.meta_optimizer
    assert type(opt) is torch.optim.SGD
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (1e-3, 0.9, True, 5e-4)
    assert group["dampening"] == 0
    assert method.hp["weight_norm"] == "sum" and method.hp["detach_loss_input"] is True
    assert method.meta.mode == "random"


def test_weighting_rules():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    v = torch.tensor([0.5, 0.0, 1.0, 0.5])
    assert weighted_mean(losses, v, "mean").item() == pytest.approx((0.5 + 3 + 2) / 4)
    assert weighted_mean(losses, v, "sum").item() == pytest.approx((0.5 + 3 + 2) / 2)
    assert weighted_mean(losses, torch.zeros(4), "sum").item() == 0.0  # Σv = 0: no division by 0
    w = WeightNet()(torch.linspace(0, 5, 7))
    assert w.shape == (7,) and bool(((w > 0) & (w < 1)).all())


def test_bad_options_fail_clearly():
    with pytest.raises(ValueError, match="weight_norm"):
        make_mwnet(weight_norm="max")
    with pytest.raises(ValueError, match="meta_optimizer"):
        make_mwnet(meta_optimizer="rmsprop")


def test_runs_on_digits_above_chance():
    rec = run_trial(digits_run("mwnet", epochs=4))
    assert rec["status"] == "done", rec["error"]
    assert rec["summary"]["last_acc"] > 30.0
    assert rec["meta_set_used"] is True
    for epoch in rec["epochs"]:  # the weight diagnostics, every epoch, with clean and noisy samples in it
        assert all(0.0 < epoch[key] < 1.0 for key in ("weight_mean", "weight_clean", "weight_noisy"))


def test_weight_diagnostics_average_the_actual_steps_weights_by_label(monkeypatch):
    import methods.mwnet as mwnet
    from methods.base import Diagnostics

    method, _, _ = make_mwnet()
    given = method.ctx.train_y
    true = given.clone()
    true[::3] = (given[::3] + 1) % CLASSES  # every third given label is noisy
    method.ctx.diagnostics = Diagnostics(true)
    used = []  # the weights of the actual steps: the weighted_mean calls without a graph to V

    def spy(losses, weights, norm):
        if not weights.requires_grad:
            used.append(weights.detach().clone())
        return weighted_mean(losses, weights, norm)

    monkeypatch.setattr(mwnet, "weighted_mean", spy)
    gen = torch.Generator().manual_seed(3)
    index = [torch.arange(0, 16), torch.arange(16, 32)]
    batches = [Batch(x=torch.randn(16, 1, 8, 8, generator=gen), y=given[i], index=i) for i in index]
    method.train_epoch(0, batches)
    values = method.ctx.diagnostics.pop()
    weights, idx = torch.cat(used).double(), torch.cat(index)
    noisy = true[idx] != given[idx]
    assert len(weights) == 32 and noisy.sum() == 11
    assert values["weight_mean"] == pytest.approx(weights.mean().item())
    assert values["weight_clean"] == pytest.approx(weights[~noisy].mean().item())
    assert values["weight_noisy"] == pytest.approx(weights[noisy].mean().item())
