"""FaMUS (methods/famus.py): the gated meta gradient against MW-Net and the core's `look_ahead`,
the straight-through sampler, the per-epoch gate statistics, and a short run per variant.

The exact-value regression of the official-code variant (`FAMUS_CODE`) lives in
tests/golden/runs/famus_code.json; after a deliberate change regenerate it with
`python tests/golden/regenerate.py famus_code` and review the diff.
"""
import json

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_matches_golden, digits_run, golden_numbers
from torch import nn
from torch.func import functional_call

from bench.core.specs import OptimSpec
from bench.grid.presets import resolve_hparams
from bench.train.engine import run_trial
from methods import METHODS
from methods.base import Batch, Diagnostics, MethodContext
from methods.bilevel import functional_forward, look_ahead, meta_gradients
from methods.famus import (
    FAMUS_CODE,
    FAMUS_LT,
    FaMUS,
    GradientSamplers,
    find_layers,
    gumbel_soft,
    in_prefixes,
    last_stage_prefixes,
    straight_through,
)
from methods.mwnet import MWNet, weighted_mean

CLASSES = 3


class TinyNet(nn.Module):
    """conv + BN (4-D and BN kernels), a two-linear `stage`, and the FC."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.stage = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
        self.fc = nn.Linear(8, CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.conv(x))).mean((2, 3))
        return F.relu(self.stage(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def tiny_method(cls, **hp):
    """`cls` on TinyNet with a fixed seed, so two calls build identical weights. These tests read the
    unrolled (reference) route's graph directly; tests/methods/test_meta_grad.py checks the jvp route
    against it."""
    hp = {"meta_grad": "unrolled", **hp}
    gen = torch.Generator().manual_seed(0)
    train_y = torch.randint(0, CLASSES, (32,), generator=gen)
    meta_y = torch.arange(CLASSES).repeat(4)
    ctx = MethodContext(
        num_classes=CLASSES, in_channels=1, image_size=6, epochs=2, batch_size=16, steps_per_epoch=2,
        device=torch.device("cpu"), optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4),
        train_y=train_y, noisy_counts=torch.bincount(train_y, minlength=CLASSES).tolist(),
        model_factory=TinyNet, transform=lambda t, train=True, generator=None: t.float() / 255.0,
        generator=gen, diagnostics=Diagnostics(train_y),
        meta_x=torch.randint(0, 256, (len(meta_y), 1, 6, 6), dtype=torch.uint8, generator=gen), meta_y=meta_y,
        train_x=torch.randint(0, 256, (32, 1, 6, 6), dtype=torch.uint8, generator=gen),
    )
    torch.manual_seed(0)
    return cls(ctx, {**cls.defaults, **hp})


def _logits_and_losses(method, x, y):
    logits = method.model(x)
    return logits, F.cross_entropy(logits, y, reduction="none")


def batches(seed=1):
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(16, 1, 6, 6, generator=gen), torch.randint(0, CLASSES, (16,), generator=gen)
    xm, ym = torch.randn(12, 1, 6, 6, generator=gen), torch.arange(CLASSES).repeat(4)
    return x, y, xm, ym


def famus_vnet_gradient(fm, gates, x, y, xm, ym):
    """FaMUS's meta gradient to V with the sampler decisions forced to `gates`."""
    fm.forced_gates = gates
    logits = fm.model(x)
    step = fm.gated_virtual_step(x, logits, F.cross_entropy(logits, y, reduction="none"))
    total = fm.meta_objective(step, xm, ym)["total"]
    return step, meta_gradients(total, list(fm.vnet.parameters()))


def reference_vnet_gradient(method, x, y, xm, ym, second_order=None, first_order=()):
    """The core's meta gradient: `look_ahead` with the given sets, then mean CE on the meta batch."""
    losses = F.cross_entropy(method.model(x), y, reduction="none")
    loss = weighted_mean(losses, method.vnet(losses.detach()), "mean")
    fast, _ = look_ahead(method.params, loss, method.current_lr(), second_order, first_order)
    meta_loss = F.cross_entropy(functional_forward(method.model, fast, xm), ym)
    return meta_gradients(meta_loss, list(method.vnet.parameters()))


def assert_close_lists(got, want, rtol=1e-5, atol=1e-8):
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=rtol, atol=atol)
    assert any(w.abs().sum() > 0 for w in want)


# --- the meta gradient ---------------------------------------------------------------------------
def test_all_samplers_on_gives_mwnet_meta_gradient():
    x, y, xm, ym = batches()
    mw = tiny_method(MWNet)
    fm = tiny_method(FaMUS, lambda_g=0.0)  # L_g is FaMUS's extra term for V; L_r does not reach V
    for a, b in ((fm.model, mw.model), (fm.vnet, mw.vnet)):
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    logits = mw.model(x)
    fast = mw.virtual_step(Batch(x, y), logits, F.cross_entropy(logits, y, reduction="none")).fast
    want = meta_gradients(F.cross_entropy(functional_forward(mw.model, fast, xm), ym), list(mw.vnet.parameters()))
    _, got = famus_vnet_gradient(fm, torch.ones(len(fm.layers), dtype=torch.bool), x, y, xm, ym)
    assert_close_lists(got, want)


def test_all_samplers_off_gives_fc_only_meta_gradient():
    x, y, xm, ym = batches()
    fm = tiny_method(FaMUS, lambda_g=0.0)
    rest = [n for n in fm.params if n not in fm.fc_names]
    want = reference_vnet_gradient(tiny_method(FaMUS), x, y, xm, ym, second_order=fm.fc_names, first_order=rest)
    step, got = famus_vnet_gradient(fm, torch.zeros(len(fm.layers), dtype=torch.bool), x, y, xm, ym)
    assert_close_lists(got, want)
    # off layers are out of the second-order graph (not multiplied by zero): no path to V at all
    vnet_params = list(fm.vnet.parameters())
    for name in rest:
        assert all(g is None for g in torch.autograd.grad(step.fast[name].sum(), vnet_params, allow_unused=True))
        torch.testing.assert_close(step.fast[name], fm.params[name] - fm.current_lr() * step.grads[name])


def test_mixed_gates_give_the_subset_meta_gradient():
    x, y, xm, ym = batches(seed=2)
    fm = tiny_method(FaMUS, lambda_g=0.0)
    gates = torch.tensor([i % 2 == 0 for i in range(len(fm.layers))])
    on = [n for layer, g in zip(fm.layers, gates) if g for n in layer.params]
    off = [n for layer, g in zip(fm.layers, gates) if not g for n in layer.params]
    want = reference_vnet_gradient(tiny_method(FaMUS), x, y, xm, ym, second_order=on + fm.fc_names, first_order=off)
    _, got = famus_vnet_gradient(fm, gates, x, y, xm, ym)
    assert_close_lists(got, want)


@pytest.mark.parametrize("off_gate_gradient", [True, False])
def test_off_layers_reach_their_sampler_only_through_the_code_gate_term(off_gate_gradient):
    x, y, _, _ = batches()
    fm = tiny_method(FaMUS, off_gate_gradient=off_gate_gradient)
    fm.forced_gates = torch.zeros(len(fm.layers), dtype=torch.bool)
    step = fm.gated_virtual_step(x, *_logits_and_losses(fm, x, y))
    sampler_params = list(fm.samplers.parameters())
    for layer in fm.layers:
        fast, param, grad = step.fast[layer.kernel], fm.params[layer.kernel], step.grads[layer.kernel]
        grads = torch.autograd.grad(fast.sum(), sampler_params, allow_unused=True, retain_graph=True)
        assert any(g is not None for g in grads) == off_gate_gradient
        torch.testing.assert_close(fast, param - fm.current_lr() * grad)


def test_last_stage_samples_only_the_last_stage_and_freezes_the_rest():
    fm = tiny_method(FaMUS, eligible="last_stage")
    assert last_stage_prefixes(fm.model) == ["stage"]
    assert [layer.name for layer in fm.layers] == ["stage.0", "stage.2"]
    assert fm.frozen_names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias"]
    x, y, _, _ = batches()
    fm.forced_gates = torch.ones(2, dtype=torch.bool)
    step = fm.gated_virtual_step(x, *_logits_and_losses(fm, x, y))
    vnet_params = list(fm.vnet.parameters())
    for name in fm.frozen_names:  # moved by the virtual step, constant in the meta gradient
        assert step.fast[name].grad_fn is None
        torch.testing.assert_close(step.fast[name], fm.params[name] - fm.current_lr() * step.grads[name])
    assert not torch.equal(step.fast["conv.weight"], fm.params["conv.weight"])
    to_vnet = torch.autograd.grad(step.fast["stage.0.weight"].sum(), vnet_params, allow_unused=True)
    assert any(g is not None for g in to_vnet)


def test_layer_units():
    model = TinyNet()
    assert [(layer.name, layer.params, layer.kernel) for layer in find_layers(model, "module")] == [
        ("conv", ("conv.weight", "conv.bias"), "conv.weight"), ("bn", ("bn.weight", "bn.bias"), "bn.weight"),
        ("stage.0", ("stage.0.weight", "stage.0.bias"), "stage.0.weight"),
        ("stage.2", ("stage.2.weight", "stage.2.bias"), "stage.2.weight"),
    ]
    tensors = find_layers(model, "tensor")
    assert [layer.name for layer in tensors] == [n for n, _ in model.named_parameters() if not n.startswith("fc.")]
    assert all(layer.params == (layer.kernel,) for layer in tensors)


# --- the meta objective and the code variant ----------------------------------------------------
def fc_gradients(fm, x, y, step, xm, ym):
    """Independently: the FC's virtual gradients (attached to V) and L_c's FC gradients at θ̂."""
    losses = F.cross_entropy(fm.model(x), y, reduction="none")
    v = fm.vnet(losses.detach())
    loss = (v * losses).sum() / (v.sum() if fm.hp["weight_norm"] == "sum" else len(y))
    fc = [fm.params["fc.weight"], fm.params["fc.bias"]]
    tra = torch.autograd.grad(loss, fc, create_graph=True)
    fast = {k: t.detach().requires_grad_() for k, t in step.fast.items()}
    buffers = {k: b.clone() for k, b in fm.model.named_buffers()}
    ce = F.cross_entropy(functional_call(fm.model, {**fast, **buffers}, (xm,)), ym)
    val = torch.autograd.grad(ce, [fast["fc.weight"], fast["fc.bias"]])
    return tra, val


def stats_gap(tra, val):
    """The code's L_g term of one tensor: mean over rows of (Δ row mean)² + (Δ row std)²."""
    if tra.dim() == 1:
        return (tra.mean() - val.mean()) ** 2 + (tra.std() - val.std()) ** 2
    return ((tra.mean(1) - val.mean(1)) ** 2 + (tra.std(1) - val.std(1)) ** 2).mean()


@pytest.mark.parametrize("grad_loss", ["paper", "code"])
def test_gradient_match_loss_against_its_formula(grad_loss):
    """Eq. 11, ‖AvgPool(g_tra) − AvgPool(g_val)‖² of the FC kernel, or the code's row statistics of
    the FC weight and bias; the training side carries V's gradient, the meta side is a target."""
    x, y, xm, ym = batches()
    fm = tiny_method(FaMUS, grad_loss=grad_loss)
    step = fm.gated_virtual_step(x, *_logits_and_losses(fm, x, y))
    parts = fm.meta_objective(step, xm, ym)
    (tra_w, tra_b), (val_w, val_b) = fc_gradients(fm, x, y, step, xm, ym)
    if grad_loss == "paper":
        want = ((tra_w.mean(1) - val_w.mean(1)) ** 2).sum()
    else:
        want = stats_gap(tra_w, val_w) + stats_gap(tra_b, val_b)
    assert want > 0
    torch.testing.assert_close(parts["grad"], want, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(parts["total"], parts["ce"] + 0.1 * parts["rate"] + 0.1 * want)
    got_v = meta_gradients(parts["grad"], list(fm.vnet.parameters()))
    want_v = torch.autograd.grad(want, list(fm.vnet.parameters()))
    assert_close_lists(got_v, want_v, rtol=1e-4, atol=1e-10)


def test_code_variant_normalises_by_the_weight_sum_and_trains_v_by_the_codes_sgd():
    """FAMUS_CODE: `norm_weight` (Σv) in the virtual step; V by SGD(meta_lr 1e-3, 0.9, Nesterov, 5e-4)."""
    x, y, _, _ = batches()
    fm = tiny_method(FaMUS, **FAMUS_CODE)
    assert fm.hp["weight_norm"] == "sum" and fm.hp["detach_loss_input"] is True
    step = fm.gated_virtual_step(x, *_logits_and_losses(fm, x, y))
    (tra_w, tra_b), _ = fc_gradients(fm, x, y, step, *batches()[2:])
    torch.testing.assert_close(step.grads["fc.weight"], tra_w)
    torch.testing.assert_close(step.grads["fc.bias"], tra_b)
    opt = fm.meta_optimizer
    assert type(opt) is torch.optim.SGD
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (1e-3, 0.9, True, 5e-4)


# --- the samplers --------------------------------------------------------------------------------
def hard_gumbel_softmax(logits, tau):
    """One-hot samples (L, 2) with the straight-through gradient, as `FaMUS.sample_gates` composes them."""
    soft = gumbel_soft(logits, tau)
    return straight_through(soft, F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype))


def test_hard_gumbel_softmax_is_one_hot_with_the_straight_through_gradient():
    logits = torch.randn(7, 2, requires_grad=True)
    torch.manual_seed(3)
    out = hard_gumbel_softmax(logits, 5.0)
    assert set(out.detach().flatten().tolist()) <= {0.0, 1.0}
    assert torch.equal(out.detach().sum(1), torch.ones(7))
    (got,) = torch.autograd.grad((out[:, 1] * torch.arange(7.0)).sum(), logits)
    torch.manual_seed(3)  # the same Gumbel noise
    (want,) = torch.autograd.grad((gumbel_soft(logits, 5.0)[:, 1] * torch.arange(7.0)).sum(), logits)
    torch.testing.assert_close(got, want)
    assert got.abs().sum() > 0


def test_gate_values_are_exact_and_samplers_get_gradients():
    x, y, xm, ym = batches()
    fm = tiny_method(FaMUS)
    logits = fm.model(x)
    step = fm.gated_virtual_step(x, logits, F.cross_entropy(logits, y, reduction="none"))
    assert step.gate.detach().tolist() == [float(o) for o in step.on]
    parts = fm.meta_objective(step, xm, ym)
    assert parts["rate"].item() == (sum(step.on) - fm.hp["num_active"]) ** 2
    grads = meta_gradients(parts["total"], list(fm.samplers.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)


def test_sampler_banks_match_separate_samplers():
    torch.manual_seed(0)
    samplers = GradientSamplers([4, 3, 4], hidden=5, depth=3)
    inputs = [torch.randn(4), torch.randn(3), torch.randn(4)]
    out = samplers(inputs)
    for i, (bank_id, pos) in enumerate([(0, 0), (1, 0), (0, 1)]):
        bank = samplers.banks[bank_id]
        h = inputs[i]
        for k, (w, b) in enumerate(zip(bank.weights, bank.biases)):
            h = h @ w[pos] + b[pos]
            if k < len(bank.slopes):
                h = F.prelu(h, bank.slopes[k][pos])
        torch.testing.assert_close(out[i], h)


# --- runs and registry ---------------------------------------------------------------------------
def test_digits_run_is_above_chance_and_records_the_active_fraction():
    rec = run_trial(digits_run("famus", epochs=3))
    assert rec["status"] == "done", rec["error"]
    assert rec["epochs"][-1]["test_acc"] > 30.0  # chance is 10 %; this run reached 40.6 %
    for row in rec["epochs"]:
        assert 0.0 <= row["famus_active_frac"] <= 1.0
        assert row["famus_active_frac"] <= row["famus_depth_frac"] <= 1.0


def test_registry_defaults_and_override_dicts():
    assert METHODS.get("famus") is FaMUS and issubclass(FaMUS, MWNet)
    json.dumps(FaMUS.defaults)
    for key, value in (("num_active", 4), ("lambda_r", 0.1), ("lambda_g", 0.1), ("sampler_hidden", 128),
                       ("sampler_lr", 0.1), ("meta_lr", 1e-3), ("gumbel_tau", 5.0), ("eligible", "all")):
        assert FaMUS.defaults[key] == value
    resolve_hparams("famus", FAMUS_LT)
    resolve_hparams("famus", FAMUS_CODE)
    with pytest.raises(ValueError, match="eligible"):
        tiny_method(FaMUS, eligible="top")


def test_code_variant_matches_golden_numbers():
    assert_matches_golden("famus_code", golden_numbers("famus_code"))



def test_a_wrapping_backbone_declares_its_last_stage():
    """Inception-ResNet-v2 is one timm child (`body`): its declared last stage, the blocks after the
    last reduction, is what FaMUS samples from, not the whole network."""
    from bench.nn.backbones import build_backbone

    model = build_backbone("inception_resnet_v2", 3, 5, 75)
    stage = last_stage_prefixes(model)
    assert stage == ["body.repeat_2", "body.block8", "body.conv2d_7b"]
    names = [n for n, _ in model.named_parameters()]
    inside = [n for n in names if in_prefixes(n, stage)]
    assert inside and len(inside) < len(names) // 3
    assert all(n.split(".")[1] in ("repeat_2", "block8", "conv2d_7b") for n in inside)
