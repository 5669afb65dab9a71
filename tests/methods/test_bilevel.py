"""The bi-level core against independent references.

The meta gradient of `look_ahead` + `functional_forward` is compared with central finite
differences (float64) of the meta loss as a plain function of the per-sample weights ε, for
the three parameter sets the methods use: all parameters, a subset with the rest moved as
constants, and the final FC only with the rest frozen.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from methods.base import TensorImages
from methods.bilevel import (
    MetaSampler,
    VirtualSGD,
    functional_forward,
    look_ahead,
    meta_gradients,
    momentum_buffers,
)

ALPHA = 0.3


class Tiny(nn.Module):
    """Linear → BatchNorm → ReLU → Linear head (`fc`), float64."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh())
        self.fc = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


@pytest.fixture
def problem():
    torch.manual_seed(0)
    model = Tiny().double()
    x, y = torch.randn(6, 4, dtype=torch.float64), torch.randint(0, 3, (6,))
    xm, ym = torch.randn(5, 4, dtype=torch.float64), torch.randint(0, 3, (5,))
    eps = torch.rand(6, dtype=torch.float64) + 0.5
    return model, x, y, xm, ym, eps


def train_loss(model, params, x, y, eps):
    losses = F.cross_entropy(functional_forward(model, params, x), y, reduction="none")
    return (eps * losses).sum() / len(y)


def core_meta_grad(model, x, y, xm, ym, eps, **sets):
    eps = eps.clone().requires_grad_(True)
    params = dict(model.named_parameters())
    fast, _ = look_ahead(params, train_loss(model, params, x, y, eps), ALPHA, **sets)
    meta = F.cross_entropy(functional_forward(model, fast, xm), ym)
    return meta_gradients(meta, [eps])[0]


def finite_difference(model, x, y, xm, ym, eps, moved, constant=(), h=1e-6):
    """d meta / d eps by central differences; `moved` names follow eps, `constant` ones are moved
    by the gradient at the unperturbed eps, all others stay put."""
    params = {k: p.detach() for k, p in model.named_parameters()}

    def grads_at(e):
        ps = {k: p.clone().requires_grad_(True) for k, p in params.items()}
        g = torch.autograd.grad(train_loss(model, ps, x, y, e), list(ps.values()))
        return dict(zip(ps, g))

    g0 = grads_at(eps)

    def meta_at(e):
        g = grads_at(e)
        fast = dict(params)
        for k in moved:
            fast[k] = params[k] - ALPHA * g[k]
        for k in constant:
            fast[k] = params[k] - ALPHA * g0[k]
        with torch.no_grad():
            return F.cross_entropy(functional_forward(model, fast, xm), ym)

    out = torch.zeros_like(eps)
    for i in range(len(eps)):
        d = torch.zeros_like(eps)
        d[i] = h
        out[i] = (meta_at(eps + d) - meta_at(eps - d)) / (2 * h)
    return out


def assert_close_rel(a, b, rel=1e-4):
    assert torch.linalg.norm(a - b) <= rel * torch.linalg.norm(b), (a, b)


def test_full_set_meta_gradient_matches_finite_differences(problem):
    model, x, y, xm, ym, eps = problem
    names = [k for k, _ in model.named_parameters()]
    got = core_meta_grad(model, x, y, xm, ym, eps)
    assert_close_rel(got, finite_difference(model, x, y, xm, ym, eps, moved=names))


def test_subset_meta_gradient_treats_the_rest_as_moved_constants(problem):
    model, x, y, xm, ym, eps = problem
    top = ["fc.weight", "fc.bias", "body.1.weight", "body.1.bias"]
    rest = ["body.0.weight", "body.0.bias"]
    got = core_meta_grad(model, x, y, xm, ym, eps, second_order=top, first_order=rest)
    assert_close_rel(got, finite_difference(model, x, y, xm, ym, eps, moved=top, constant=rest))
    # and it is a different quantity from the full meta gradient
    full = core_meta_grad(model, x, y, xm, ym, eps)
    assert not torch.allclose(got, full)


def test_fc_only_meta_gradient_leaves_the_rest_at_theta(problem):
    model, x, y, xm, ym, eps = problem
    fc = ["fc.weight", "fc.bias"]
    got = core_meta_grad(model, x, y, xm, ym, eps, second_order=fc)
    assert_close_rel(got, finite_difference(model, x, y, xm, ym, eps, moved=fc))


def test_only_the_requested_gradients_are_returned_and_unknown_names_fail(problem):
    model, x, y, _, _, eps = problem
    params = dict(model.named_parameters())
    fast, grads = look_ahead(params, train_loss(model, params, x, y, eps), ALPHA, second_order=["fc.bias"])
    assert list(grads) == ["fc.bias"]
    assert set(fast) == set(params)
    assert not fast["fc.weight"].requires_grad and torch.equal(fast["fc.weight"], params["fc.weight"])
    with pytest.raises(KeyError, match="nope"):
        look_ahead(params, train_loss(model, params, x, y, eps), ALPHA, second_order=["nope"])


@pytest.mark.parametrize("nesterov", [False, True])
def test_virtual_sgd_reproduces_torch_sgd_with_momentum_and_weight_decay(problem, nesterov):
    model, x, y, _, _, eps = problem
    real = copy.deepcopy(model)
    opt = torch.optim.SGD(real.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
    for _ in range(2):  # two steps, so the second starts from a momentum buffer
        params = dict(real.named_parameters())
        rule = VirtualSGD.like(opt)
        bufs = momentum_buffers(opt, params)
        fast, _ = look_ahead(params, train_loss(real, params, x, y, eps), 0.1, rule=rule, buffers=bufs)
        opt.zero_grad()
        train_loss(real, params, x, y, eps).backward()
        opt.step()
        for name, p in real.named_parameters():
            torch.testing.assert_close(fast[name].detach(), p.detach(), rtol=1e-12, atol=1e-12)


def test_scratch_bn_keeps_the_real_running_statistics(problem):
    model, x, *_ = problem
    params = dict(model.named_parameters())
    before = model.body[1].running_mean.clone()
    functional_forward(model, params, x, bn="scratch")
    assert torch.equal(model.body[1].running_mean, before)
    functional_forward(model, params, x, bn="real")
    assert not torch.equal(model.body[1].running_mean, before)
    with pytest.raises(ValueError, match="bn must be"):
        functional_forward(model, params, x, bn="frozen")


def test_meta_sampler_cycles_through_every_sample_once_per_pass():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    y = torch.arange(10)
    ident = lambda t, train=True, generator=None: t.float()  # noqa: E731
    sampler = MetaSampler(TensorImages(x, ident), y, 4, torch.Generator().manual_seed(0), mode="cycle")
    seen = torch.cat([sampler.next()[1] for _ in range(3)])  # 4 + 4 + 2 (the partial batch)
    assert sorted(seen.tolist()) == list(range(10))
    assert len(sampler.next()[1]) == 4  # a new pass begins
    random = MetaSampler(TensorImages(x, ident), y, 20, torch.Generator().manual_seed(0), mode="random")
    xb, yb = random.next()
    assert len(yb) == 10 and sorted(yb.tolist()) == list(range(10))  # capped at the set's size
    assert torch.equal(xb.view(-1).long(), yb)
    with pytest.raises(ValueError, match="mode"):
        MetaSampler(TensorImages(x, ident), y, 4, torch.Generator(), mode="bogus")


@pytest.mark.parametrize("mode", MetaSampler.MODES)
def test_meta_sampler_restored_from_its_state_continues_with_the_same_batches(mode):
    """A sampler rebuilt from `state_dict` (and its generator's state, which the engine saves)
    draws the same batches as the original, mid-cycle and across the cycle's restart."""
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    y = torch.arange(10)
    ident = lambda t, train=True, generator=None: t.float()  # noqa: E731
    original = MetaSampler(TensorImages(x, ident), y, 4, torch.Generator().manual_seed(0), mode=mode)
    assert original.state_dict()["order"].numel() == 0  # nothing drawn yet
    for _ in range(2):
        original.next()
    state = {k: v.clone() for k, v in original.state_dict().items()}
    generator_state = original.generator.get_state()
    resumed = MetaSampler(TensorImages(x, ident), y, 4, torch.Generator().manual_seed(99), mode=mode)
    resumed.load_state_dict(state)
    resumed.generator.set_state(generator_state)
    want = [original.next()[1] for _ in range(5)]  # 2 of the first pass, then a new one
    got = [resumed.next()[1] for _ in range(5)]
    assert [w.tolist() for w in want] == [g.tolist() for g in got]
    if mode == "cycle":
        assert state["pos"].item() == 8 and len(state["order"]) == 10
        # without the sampler's state, the same generator state gives other batches
        unrestored = MetaSampler(TensorImages(x, ident), y, 4, torch.Generator(), mode=mode)
        unrestored.generator.set_state(generator_state)
        assert [u.tolist() for u in (unrestored.next()[1] for _ in range(5))] != [w.tolist() for w in want]
    with pytest.raises(ValueError, match="order of 3"):
        resumed.load_state_dict({"order": torch.arange(3), "pos": torch.tensor(0)})
