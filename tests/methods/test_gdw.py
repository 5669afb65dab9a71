"""GDW (methods/gdw.py): the zero-mean constraint, equal class weights reduce to MW-Net, the
second stage's clip and L1 normalisation, the p clamp, one whole iteration against an
independent first-order reference, two iterations on a BatchNorm ResNet against a literal port of
the official `main.py` (GGchen1997/GDW-NIPS2021 @ 9aa54d3), and a digits run above chance.

GDW has no warm-up, so the 2-epoch golden run in test_methods.py (tests/golden/runs/gdw.json,
`python tests/golden/regenerate.py gdw`) already covers its main phase.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import digits_run, small_resnet_context
from torch import nn
from torch.func import functional_call, jvp

from bench.grid.presets import resolve_hparams
from bench.train.engine import build_method, run_trial
from methods import Batch
from methods.gdw import (
    GDW,
    GDW_CIFAR100,
    OMEGA_RANGE,
    clamped_probs,
    logit_gradient,
    second_stage_weights,
    zero_mean_weights,
)
from noisytail_datasets import build_data


def residual_sums(omega: torch.Tensor, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ_j ω_j (p_j − y_j) per row."""
    return (omega * (p - F.one_hot(y, p.shape[1]).to(p.dtype))).sum(dim=1)


def test_zero_mean_constraint_cancels_every_row():
    g = torch.Generator().manual_seed(0)
    n, classes = 64, 10
    logits = 3 * torch.randn(n, classes, generator=g)
    logits[:8, 0] = 30.0  # p_0 clamped: rows 0-3 at their target, rows 4-7 off it
    y = torch.randint(1, classes, (n,), generator=g)
    y[:4] = 0
    p = clamped_probs(logits, 0.999)
    omega = 0.1 + 2 * torch.rand(n, classes, generator=g)
    assert residual_sums(omega, p, y).abs().max() > 0.5  # the constraint has work to do
    constrained = zero_mean_weights(omega, p, y)
    assert residual_sums(constrained, p, y).abs().max() < 1e-5
    off_target = F.one_hot(y, classes) == 0
    assert torch.equal(constrained[off_target], omega[off_target])
    expected_t = (omega * p * off_target).sum(1) / (1 - p[torch.arange(n), y])
    torch.testing.assert_close(constrained[torch.arange(n), y], expected_t)


def test_probabilities_are_clamped_in_value_only():
    logits = torch.tensor([[50.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    p = clamped_probs(logits, 0.999)
    assert not p.requires_grad
    assert p[0, 0] == torch.tensor(0.999)
    torch.testing.assert_close(p[1], torch.full((3,), 1 / 3))
    y = torch.tensor([0, 1])
    omega = zero_mean_weights(torch.ones(2, 3), p, y)
    assert torch.isfinite(omega).all()
    # 1 − p_t ≥ 0.001: the saturated sample's target weight is (p_1 + p_2) / 0.001, not 0/0
    torch.testing.assert_close(omega[0, 0], (p[0, 1] + p[0, 2]) / (1 - p[0, 0]))
    torch.testing.assert_close(logit_gradient(p, y, torch.ones(2, 3))[0, 0], torch.tensor(-0.001 / 2))


def test_equal_class_weights_give_the_mwnet_instance_weighted_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4))
    n = 16
    x, y, v = torch.randn(n, 5), torch.randint(0, 4, (n,)), torch.rand(n)
    logits = model(x)
    p = clamped_probs(logits, 0.999)
    assert p.max() < 0.999
    omega = zero_mean_weights(v[:, None].expand(-1, 4), p, y)
    torch.testing.assert_close(omega, v[:, None].expand(-1, 4))  # ω_t = v·Σ_{j≠t} p_j/(1 − p_t) = v
    params = list(model.parameters())
    gdw = torch.autograd.grad(logits, params, grad_outputs=logit_gradient(p, y, omega), retain_graph=True)
    mwnet = torch.autograd.grad((v * F.cross_entropy(logits, y, reduction="none")).sum() / n, params)
    for a, b in zip(gdw, mwnet):
        torch.testing.assert_close(a, b)


def test_second_stage_clips_each_entry_and_normalises_by_the_batch_l1_norm():
    g = torch.Generator().manual_seed(0)
    omega = 0.5 + torch.rand(32, 10, generator=g)
    grad = torch.randn(32, 10, generator=g)
    clipped = second_stage_weights(omega, grad, lr=1e4, clip=0.2)
    assert (clipped - omega).abs().max() <= 0.2 + 1e-6
    assert ((clipped - omega).abs() > 0.2 - 1e-6).float().mean() > 0.5  # the clip is active
    free = second_stage_weights(omega, grad, lr=1.0, clip=0.2)
    torch.testing.assert_close(free, omega - grad / grad.abs().sum())  # ‖G‖₁ over all n×C entries
    torch.testing.assert_close(second_stage_weights(omega, 7 * grad, lr=1.0, clip=0.2), free)
    assert torch.equal(second_stage_weights(omega, torch.zeros_like(grad), lr=100.0, clip=0.2), omega)


def _build(method: str, bundle):
    torch.manual_seed(0)
    return build_method(digits_run(method), bundle, torch.device("cpu"), torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def digits():
    bundle = build_data(digits_run("gdw").data)
    x = _build("gdw", bundle).ctx.transform(bundle.train_x[:64], train=True, generator=torch.Generator().manual_seed(1))
    return bundle, x, bundle.train_y[:64]


def test_equal_class_weights_give_mwnet_fast_weights_and_vnet_gradient(digits):
    """The method's own virtual and meta steps: before the second stage, GDW is MW-Net."""
    bundle, x, y = digits
    mw, gdw = _build("mwnet", bundle), _build("gdw", bundle)
    logits = mw.model(x)
    fast_mw = mw.virtual_step(Batch(x, y), logits, F.cross_entropy(logits, y, reduction="none"))
    mw.meta_step(fast_mw)
    logits = gdw.model(x)
    p = clamped_probs(logits, gdw.hp["p_max"])
    assert p.max() < gdw.hp["p_max"]  # unclamped, so the zero-mean entry equals v
    omega = gdw.first_stage_weights(F.cross_entropy(logits, y, reduction="none"), p, y)
    fast_gdw = gdw.class_virtual_step(x, logits, p, y, omega)
    gdw.class_meta_step(fast_gdw, omega)
    for name in fast_mw.fast:
        torch.testing.assert_close(fast_gdw.fast[name], fast_mw.fast[name])
    for a, b in zip(gdw.vnet.parameters(), mw.vnet.parameters()):
        assert a.grad.abs().max() > 0
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-9)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")  # inside torch.func.jvp
def test_one_iteration_matches_a_first_order_reference(digits):
    """G = ∂L_meta/∂ω from the double backward equals −(α/n)(p − y) ⊙ (J_z u), u = ∇_θ̂ L_meta,
    J_z u a forward-mode derivative of the logits; V's gradient and the real step follow."""
    bundle, x, y = digits
    gdw, ref = _build("gdw", bundle), _build("gdw", bundle)
    hp, n, classes, alpha = ref.hp, len(y), bundle.num_classes, ref.current_lr()
    names = list(ref.params)
    theta = {k: q.detach().clone() for k, q in ref.params.items()}
    params = [ref.params[k] for k in names]

    logits = ref.model(x)
    losses = F.cross_entropy(logits.detach(), y, reduction="none")
    p = clamped_probs(logits, hp["p_max"])
    residual = p - F.one_hot(y, classes).float()
    omega_of = lambda v: zero_mean_weights(v[:, None].expand(-1, classes), p, y)  # noqa: E731
    with torch.no_grad():
        omega = omega_of(ref.vnet(losses))
    g = torch.autograd.grad(logits, params, residual * omega / n, retain_graph=True)
    fast = {k: (theta[k] - alpha * gk).requires_grad_() for k, gk in zip(names, g)}
    x_meta, y_meta = ref.meta.next()
    meta_loss = F.cross_entropy(functional_call(ref.model, fast, (x_meta,)), y_meta)
    u = torch.autograd.grad(meta_loss, list(fast.values()))
    _, jzu = jvp(lambda *ps: functional_call(ref.model, dict(zip(names, ps)), (x,)), tuple(theta.values()), tuple(u))
    omega_grad = -(alpha / n) * residual * jzu
    vnet_grad = torch.autograd.grad((omega_grad * omega_of(ref.vnet(losses))).sum(), list(ref.vnet.parameters()))
    omega2 = second_stage_weights(omega, omega_grad, hp["omega_lr"], hp["omega_clip"])
    assert (omega2 - omega).abs().max() > 0.1  # the second stage moves the weights
    expected, with_first_stage = ({k: t.clone().requires_grad_() for k, t in theta.items()} for _ in range(2))
    for target, w in ((expected, omega2), (with_first_stage, omega)):
        weights = zero_mean_weights(w.clamp(*OMEGA_RANGE), p, y)
        step = torch.autograd.grad(logits, params, residual * weights / n, retain_graph=True)
        for k, gk in zip(names, step):
            target[k].grad = gk
        ref.ctx.build_optimizer(target.values()).step()

    gdw.train_step(Batch(x, y), 0)
    for k in names:
        torch.testing.assert_close(gdw.params[k].detach(), expected[k].detach(), rtol=1e-5, atol=1e-6)
    assert max((expected[k] - with_first_stage[k]).abs().max() for k in names) > 1e-4  # the test can tell
    for a, b in zip(gdw.vnet.parameters(), vnet_grad):
        torch.testing.assert_close(a.grad, b, rtol=1e-4, atol=1e-9)


# --- against a literal port of the official iteration, on a BatchNorm backbone ----------------------
PORT_CLASSES = 5


def set_param(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Replace a parameter by a plain tensor, as the official `MetaModule.set_param` does."""
    *path, leaf = name.split(".")
    for part in path:
        module = getattr(module, part)
    del module._parameters[leaf]
    setattr(module, leaf, value)


def official_gdw_iteration(model, vnet_net, optimizer_model, optimizer_vnet, inputs, targets, meta_batch,
                           lr, outer_lr, clip):
    """One iteration of `train()` in the official `main.py` (mode 'gdw', commit 9aa54d3), statement by
    statement; `vnet_net` is VNet's linear1 → relu → linear2 (its forward adds the sigmoid)."""
    vnet = lambda t: torch.sigmoid(vnet_net(t))  # noqa: E731
    n, num_classes = len(targets), PORT_CLASSES
    # 1. compute forward v_lambda
    meta_model = copy.deepcopy(model)  # build_model(args) + load_state_dict(model.state_dict()), train mode
    outputs = meta_model(inputs)
    one_hot_label = torch.zeros(n, outputs.shape[1]).scatter_(1, targets.reshape(-1, 1), 1)
    p = F.softmax(outputs, dim=1)
    p.data = torch.clamp(p.data, 0, 0.999)
    label_wise_error = p - one_hot_label
    cost = F.cross_entropy(outputs, targets, reduction="none")
    cost_v = torch.reshape(cost, (len(cost), 1))
    v_lambda_t = vnet(cost_v.data).view(-1, 1)
    v_lambda = v_lambda_t.clone()
    for _ in range(num_classes - 1):
        v_lambda = torch.cat([v_lambda, v_lambda_t.clone()], dim=1)
    index = torch.arange(v_lambda.size(0))
    v_lambda[index, targets] = (torch.sum(v_lambda * p.data, dim=1) - v_lambda[index, targets] * p.data[
        index, targets]) / (1 - p.data[index, targets])
    # 2. build the connection
    meta_model.zero_grad()
    grad1 = label_wise_error * v_lambda / label_wise_error.size()[0]
    grad_sum = torch.sum(grad1)
    grad_sum.backward(retain_graph=True)
    meta_model.zero_grad()
    names = [name for name, _ in meta_model.named_parameters()]
    params = list(meta_model.parameters())
    grad2 = torch.autograd.grad(outputs, params, grad_outputs=grad1, create_graph=True)
    for name, param, grad in zip(names, params, grad2):  # meta_model.update_params(lr_inner=meta_lr, ...)
        set_param(meta_model, name, param - lr * grad)
    # 3. update vnet
    inputs_val, targets_val = meta_batch
    y_g_hat = meta_model(inputs_val)
    l_g_meta = F.cross_entropy(y_g_hat, targets_val)
    v_lambda.retain_grad()
    optimizer_vnet.zero_grad()
    l_g_meta.backward()
    optimizer_vnet.step()
    grad_info = v_lambda.grad.data
    deno = torch.sum(torch.abs(grad_info))
    update = torch.clamp(outer_lr * grad_info / deno, -clip, clip)
    v_lambda.data = v_lambda.data - update.data
    # 4. compute new forward w_new (the copy's forward is unused, as in the official code)
    meta_model = copy.deepcopy(model)
    outputs = meta_model(inputs)
    with torch.no_grad():
        w_new = torch.clamp(v_lambda.data, 1e-6, 1e6)
    outputs = model(inputs)
    p = F.softmax(outputs, dim=1)
    p.data = torch.clamp(p.data, 0, 0.999)
    label_wise_error = p - one_hot_label
    index = torch.arange(w_new.size(0))
    w_new[index, targets] = (torch.sum(w_new * p.data, dim=1) - w_new[index, targets] * p.data[
        index, targets]) / (1 - p.data[index, targets])
    # 5. update model param
    optimizer_model.zero_grad()
    grad1 = label_wise_error.data * w_new.data / label_wise_error.size()[0]
    outputs.backward(grad1)
    optimizer_model.step()
    return update


def port_setup(saturate: bool):
    """GDW on ResNet-32's class with one block per stage (BatchNorm) on 8×8 inputs, two training and
    two meta batches; `saturate` pushes class 0's probability past the 0.999 clamp for most samples."""
    ctx = small_resnet_context(PORT_CLASSES, meta_repeats=4)
    gen, train_y, meta_y = ctx.generator, ctx.train_y, ctx.meta_y
    torch.manual_seed(0)
    method = GDW(ctx, resolve_hparams("gdw", {}))
    if saturate:
        with torch.no_grad():
            method.model.fc.bias[0] += 14.0
    batches = [(torch.randn(16, 1, 8, 8, generator=gen), train_y[16 * i : 16 * (i + 1)]) for i in range(2)]
    metas = [(torch.randn(len(meta_y), 1, 8, 8, generator=gen), meta_y) for _ in range(2)]
    return method, batches, metas


@pytest.mark.parametrize("saturate", [False, True], ids=["plain", "clamped"])
def test_two_iterations_match_a_literal_port_of_the_official_code_with_batchnorm(saturate):
    method, batches, metas = port_setup(saturate)
    model, vnet_net = copy.deepcopy(method.model), copy.deepcopy(method.vnet.net)
    optimizer_model = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=5e-4)
    optimizer_vnet = torch.optim.Adam(vnet_net.parameters(), 1e-3, weight_decay=1e-4)
    hp = method.hp
    meta_batches = iter(metas)
    method.meta.next = lambda: next(meta_batches)
    clipped = []
    for (x, y), meta in zip(batches, metas):
        if saturate:  # (a copy: a forward in train mode would move the port's BN statistics)
            assert (clamped_probs(copy.deepcopy(model)(x), 1.0)[:, 0] > 0.999).float().mean() > 0.5
        method.train_step(Batch(x, y), 0)
        update = official_gdw_iteration(model, vnet_net, optimizer_model, optimizer_vnet, x, y, meta,
                                        0.1, hp["omega_lr"], hp["omega_clip"])
        clipped.append((update.abs() >= hp["omega_clip"]).any().item())
    assert any(clipped)  # the second stage's clip is exercised

    got, want = method.model.state_dict(), model.state_dict()
    assert [k for k in got if "running" in k], "no BatchNorm statistics to compare"
    for name in want:  # parameters, BN running mean/var and num_batches_tracked
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)
    for a, b in zip(method.vnet.net.parameters(), vnet_net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    for got_opt, want_opt in ((method.optimizer, optimizer_model), (method.meta_optimizer, optimizer_vnet)):
        got_state, want_state = got_opt.state_dict()["state"], want_opt.state_dict()["state"]
        assert got_state.keys() == want_state.keys() and got_state
        for i, entry in want_state.items():
            for key, value in entry.items():
                torch.testing.assert_close(got_state[i][key], value, rtol=1e-5, atol=1e-7, msg=f"{i} {key}")


def test_cifar100_override_names_a_hyperparameter():
    assert resolve_hparams("gdw", GDW_CIFAR100)["omega_lr"] == 1000.0


def test_digits_run_ends_above_chance():
    rec = run_trial(digits_run("gdw", epochs=3))
    assert rec["status"] == "done", rec["error"]
    assert rec["epochs"][-1]["test_acc"] > 25.0  # chance is 10 %
    # MW-Net's weight diagnostics, read from the target entries ω'_t (positive; not bounded by 1)
    assert all(epoch["weight_clean"] > 0 and epoch["weight_noisy"] > 0 for epoch in rec["epochs"])


def test_weight_diagnostics_read_the_target_entries_of_the_actual_step(monkeypatch):
    import methods.gdw as gdw
    from methods.base import Diagnostics

    ctx = small_resnet_context(4, meta_repeats=5)
    torch.manual_seed(0)
    method = GDW(ctx, resolve_hparams("gdw", {"meta_grad": "unrolled"}))
    given = ctx.train_y
    true = given.clone()
    true[::4] = (given[::4] + 1) % 4  # every fourth given label is noisy
    ctx.diagnostics = Diagnostics(true)
    used = []  # ω' of the actual steps: the zero-mean calls without a graph to V

    def spy(omega, p, y):
        out = zero_mean_weights(omega, p, y)
        if not out.requires_grad:
            used.append(out[torch.arange(len(y)), y].detach().clone())
        return out

    monkeypatch.setattr(gdw, "zero_mean_weights", spy)
    gen = torch.Generator().manual_seed(3)
    index = [torch.arange(0, 16), torch.arange(16, 32)]
    method.train_epoch(0, [Batch(x=torch.randn(16, 1, 8, 8, generator=gen), y=given[i], index=i) for i in index])
    values = ctx.diagnostics.pop()
    weights, idx = torch.cat(used).double(), torch.cat(index)
    noisy = true[idx] != given[idx]
    assert len(weights) == 32 and noisy.sum() == 8
    assert values["weight_clean"] == pytest.approx(weights[~noisy].mean().item())
    assert values["weight_noisy"] == pytest.approx(weights[noisy].mean().item())
