"""MW-Net: one step equals the official three-step procedure, weighting rules, LT options."""
import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import digits_run
from torch.func import functional_call

from bench.grid.presets import resolve_hparams
from bench.train.engine import build_method, run_trial
from methods import Batch
from methods.mwnet import MWNET_LT, WeightNet, weighted_mean
from noisytail_datasets import build_data


def make_mwnet(**hp):
    cfg = digits_run("mwnet").with_(hparams=resolve_hparams("mwnet", hp), backbone="resnet32")  # with BatchNorm
    bundle = build_data(cfg.data)
    method = build_method(cfg, bundle, torch.device("cpu"), torch.Generator().manual_seed(0))
    x = method.ctx.transform(bundle.train_x[:32], train=False)
    xm = method.ctx.transform(bundle.meta_x[:20], train=False)
    return method, Batch(x=x, y=bundle.train_y[:32]), (xm, bundle.meta_y[:20])


def official_step(model, vnet, opt, meta_opt, batch, meta, lr, norm, detach):
    """The official loop: virtual step on a throw-away copy, meta step, then a fresh forward."""
    twin = copy.deepcopy(model)
    losses = F.cross_entropy(twin(batch.x), batch.y, reduction="none")
    v = vnet(losses.detach() if detach else losses)
    loss = weighted_mean(losses, v, norm)
    names = [n for n, _ in twin.named_parameters()]
    grads = torch.autograd.grad(loss, list(twin.parameters()), create_graph=True)
    fast = {n: p - lr * g for n, p, g in zip(names, twin.parameters(), grads)}
    meta_loss = F.cross_entropy(functional_call(twin, {**fast, **dict(twin.named_buffers())}, (meta[0],)), meta[1])
    meta_opt.zero_grad()
    meta_loss.backward()
    meta_opt.step()
    losses = F.cross_entropy(model(batch.x), batch.y, reduction="none")
    with torch.no_grad():
        v = vnet(losses)
    loss = weighted_mean(losses, v, norm)
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("hp", [{}, MWNET_LT], ids=["noise", "lt"])
def test_one_shared_forward_step_equals_the_official_two_forward_step(hp):
    method, batch, meta = make_mwnet(**hp)
    model, vnet = copy.deepcopy(method.model), copy.deepcopy(method.vnet)
    opt = method.ctx.build_optimizer(model.parameters())
    from methods.mwnet import build_meta_optimizer

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
    assert any(not torch.equal(a, b) for a, b in zip(vnet.parameters(), WeightNet().parameters()))


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
