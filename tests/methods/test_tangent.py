"""methods/tangent.py: `ReusableForward` runs a backbone's training forward exactly as module(x) does and its
`tangent` (which reuses that forward's primal values) equals the forward-mode derivative computed from scratch
(dual tensors through functional_call at the same parameters and input, running statistics on copies).

Tolerances: 1e-5 of max|u| in float32, 1e-10 in float64.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from bench.nn.backbones import WideResNet, build_backbone
from methods.tangent import NotSupported, ReusableForward

REL32 = 1e-5
REL64 = 1e-10

#: backbone name -> (in_channels, image side of the build, input side, batch, prefixes of the "last stage")
BACKBONES = {
    "resnet32": (3, 32, 32, 16, ("layer3.", "fc.")),
    "small_cnn": (1, 28, 28, 8, ("fc1.", "fc.")),
    "mlp": (1, 28, 28, 8, ("hidden2.", "fc.")),
    "resnet18": (3, 64, 64, 4, ("layer4.", "fc.")),
    "preact_resnet18": (3, 32, 32, 4, ("layer4.", "fc.")),
    "vgg19_bn": (3, 32, 32, 4, ("stage5.", "fc.")),
    "wrn28_10": (3, 32, 8, 4, ("block3.", "bn.", "fc.")),
}


def reference_tangent(model: nn.Module, x: Tensor, tangents: dict[str, Tensor], input_tangent: Tensor | None = None
                      ) -> Tensor:
    """J·w from scratch: a dual-tensor forward through functional_call (buffers cloned)."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    with torch.no_grad(), fwAD.dual_level():
        moved = {n: fwAD.make_dual(params[n], t) for n, t in tangents.items()}
        xin = x if input_tangent is None else fwAD.make_dual(x, input_tangent)
        out = functional_call(model, {**params, **moved, **buffers}, (xin,))
        t = fwAD.unpack_dual(out).tangent
    return torch.zeros_like(out) if t is None else t.clone()


def rel_err(u: Tensor, ref: Tensor) -> float:
    return ((u - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def random_tangents(model: nn.Module, prefixes: tuple[str, ...] | None = None, seed: int = 1) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in model.named_parameters()
            if prefixes is None or n.startswith(prefixes)}


def build(name: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[nn.Module, Tensor]:
    cin, side, xside, batch, _ = BACKBONES[name]
    torch.manual_seed(seed)
    model = build_backbone(name, cin, 10, side).to(dtype).train()
    with torch.no_grad():  # non-trivial BatchNorm affine parameters and running statistics
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    x = torch.randn(batch, cin, xside, xside, generator=torch.Generator().manual_seed(seed + 7), dtype=dtype)
    return model, x


#: the big ImageNet/wide backbones take several seconds each on a CPU
SLOW = {"resnet18", "preact_resnet18", "vgg19_bn", "wrn28_10"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in BACKBONES])
def test_tangent_matches_forward_ad(name: str) -> None:
    model, x = build(name)
    assert ReusableForward.supports(model)
    rf = ReusableForward(model)
    rf(x)
    for prefixes in (None, BACKBONES[name][4]):
        tangents = random_tangents(model, prefixes)
        assert tangents
        u = rf.tangent(tangents)
        ref = reference_tangent(model, x, tangents)
        assert ref.abs().max() > 0
        assert rel_err(u, ref) < REL32, (name, prefixes, rel_err(u, ref))


@pytest.mark.parametrize("name", ["resnet32", "small_cnn", "mlp", "preact_resnet18"])
def test_tangent_float64_is_tight(name: str) -> None:
    model, x = build(name, torch.float64)
    rf = ReusableForward(model)
    rf(x)
    for prefixes in (None, BACKBONES[name][4]):
        tangents = random_tangents(model, prefixes)
        assert rel_err(rf.tangent(tangents), reference_tangent(model, x, tangents)) < REL64


def test_small_wide_resnet_float64() -> None:
    torch.manual_seed(0)
    model = WideResNet(3, 10, depth=10, widen_factor=2).double().train()
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64)
    rf = ReusableForward(model)
    rf(x)
    for prefixes in (None, ("block3.", "bn.", "fc.")):
        tangents = random_tangents(model, prefixes)
        assert rel_err(rf.tangent(tangents), reference_tangent(model, x, tangents)) < REL64


@pytest.mark.parametrize("name", ["resnet32", "resnet18", "vgg19_bn"])
def test_forward_is_the_training_forward(name: str) -> None:
    """Same logits, same gradients, running statistics updated once; tangent() changes no buffer."""
    model, x = build(name)
    twin = copy.deepcopy(model)
    rf = ReusableForward(model)
    out, want = rf(x), twin(x)
    assert torch.equal(out, want)
    for (n, b), b2 in zip(model.named_buffers(), twin.buffers()):
        assert torch.equal(b, b2), n
    assert all(int(b) == 1 for n, b in model.named_buffers() if n.endswith("num_batches_tracked"))
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    (want * weights).sum().backward()
    for (n, p), p2 in zip(model.named_parameters(), twin.parameters()):
        assert torch.allclose(p.grad, p2.grad, rtol=1e-5, atol=1e-7), n
    before = {n: b.clone() for n, b in model.named_buffers()}
    rf.tangent(random_tangents(model))  # after the backward: the saved values survive it
    for n, b in model.named_buffers():
        assert torch.equal(b, before[n]), n


def test_eval_mode_and_mode_switch() -> None:
    """Eval-mode BatchNorm (running statistics, a linear map); the trace follows the module's mode."""
    model, x = build("resnet32")
    rf = ReusableForward(model)
    rf(x)  # train mode: some running statistics
    model.eval()
    with pytest.raises(RuntimeError, match="modes changed"):
        rf.tangent({})  # the forward ran in train mode
    assert torch.equal(rf(x), model(x))
    tangents = random_tangents(model)
    assert rel_err(rf.tangent(tangents), reference_tangent(model, x, tangents)) < REL32
    model.train()
    rf(x)
    assert rel_err(rf.tangent(tangents), reference_tangent(model, x, tangents)) < REL32


def test_input_tangent_and_empty_tangents() -> None:
    model, x = build("resnet32", torch.float64)
    rf = ReusableForward(model)
    out = rf(x)
    dx = torch.randn_like(x)
    assert rel_err(rf.tangent({}, input_tangent=dx), reference_tangent(model, x, {}, dx)) < REL64
    tangents = random_tangents(model, ("layer2.",))
    assert rel_err(rf.tangent(tangents, input_tangent=dx), reference_tangent(model, x, tangents, dx)) < REL64
    zero = rf.tangent({})
    assert zero.shape == out.shape and not zero.any()
    with pytest.raises(KeyError):
        rf.tangent({"no.such.weight": torch.zeros(1)})


class Zoo(nn.Module):
    """Exercises the rules a backbone rarely uses, and the per-node fallback."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.reflect = nn.Conv2d(6, 6, 3, padding=1, padding_mode="reflect")  # fallback (not zeros padding)
        self.bn = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.norm = nn.LayerNorm(6 * 4 * 4)  # fallback module with parameters
        self.scale = nn.Parameter(torch.randn(6, 1, 1))  # a get_attr parameter
        self.bn1d = nn.BatchNorm1d(32)
        self.fc = nn.Linear(32, 5)
        self.proj = nn.Linear(96, 32)

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu(self.bn(self.conv(x)))
        h = h + torch.tanh(self.reflect(h)) * h  # fallback function; product rule
        h = h * self.scale - 0.5 * h / 3.0  # mul by a parameter; constants
        t = torch.tanh(h)  # the fallback reads h, which the in-place ReLU then overwrites (autograd does not mind)
        h.relu_()
        h = t + h  # reads the updated h
        h = F.max_pool2d(h, 2) + self.pool(h.flip(-1))
        h = torch.cat([h, F.pad(h, (1, 0, 1, 0), value=1.0)[..., :-1, :-1]], dim=1)[:, 3:9]
        h = h.view(h.size(0), -1)
        h = F.gelu(self.norm(h))
        h = self.bn1d(self.proj(h))
        h = h.relu_()
        h = h / (1.0 + h.pow(2).mean(dim=1, keepdim=True))  # quotient rule
        return self.fc(h)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, REL32), (torch.float64, REL64)])
def test_zoo_rules_and_fallback(dtype: torch.dtype, tol: float) -> None:
    torch.manual_seed(0)
    model = Zoo().to(dtype).train()
    x = torch.randn(8, 3, 8, 8, dtype=dtype)
    twin = copy.deepcopy(model)
    rf = ReusableForward(model)
    assert torch.equal(rf(x), twin(x))
    for (n, b), b2 in zip(model.named_buffers(), twin.buffers()):
        assert torch.equal(b, b2), n
    for prefixes in (None, ("scale",), ("norm.", "proj."), ("reflect.",), ("fc.bias",)):
        tangents = random_tangents(model, prefixes)
        dx = torch.randn_like(x) if prefixes is None else None
        u, ref = rf.tangent(tangents, input_tangent=dx), reference_tangent(model, x, tangents, dx)
        assert rel_err(u, ref) < tol, (prefixes, rel_err(u, ref))
    # a bias in front of a train-mode BatchNorm: BatchNorm removes any per-channel constant, so J·w is 0
    u = rf.tangent(random_tangents(model, ("conv.bias", "proj.bias")))
    assert u.shape == (8, 5) and u.abs().max() < tol


@pytest.mark.parametrize("name,prefixes", [("small_cnn", ("conv1.bias",)), ("small_cnn", ("conv2.bias", "fc1.bias")),
                                           ("mlp", ("hidden1.bias",))])
def test_bias_only_tangents(name: str, prefixes: tuple[str, ...]) -> None:
    """Only bias tangents: the conv/linear tangent is the bias broadcast to the output's shape."""
    model, x = build(name, torch.float64)
    rf = ReusableForward(model)
    rf(x)
    tangents = random_tangents(model, prefixes)
    assert rel_err(rf.tangent(tangents), reference_tangent(model, x, tangents)) < REL64


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return self.fc(x)
        return -self.fc(x)


def test_untraceable_module_is_refused() -> None:
    assert not ReusableForward.supports(Branchy())
    with pytest.raises(NotSupported):
        ReusableForward(Branchy())


def test_in_place_change_after_forward_is_refused() -> None:
    model, x = build("small_cnn")
    rf = ReusableForward(model)
    with pytest.raises(RuntimeError):
        rf.tangent({})  # no forward yet
    rf(x)
    with torch.no_grad():
        model.fc.weight.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        rf.tangent(random_tangents(model))


class InPlaceOnView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc(x)
        v = h[:, :2]
        h.relu_()  # also changes v, which fx's graph does not show
        return v * 2


class InPlaceOnInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(F.relu(x, inplace=True))


@pytest.mark.parametrize("module", [InPlaceOnView, InPlaceOnInput])
def test_in_place_that_cannot_be_rewritten_is_refused(module: type[nn.Module]) -> None:
    assert not ReusableForward.supports(module())
    with pytest.raises(NotSupported, match="in place"):
        ReusableForward(module())


def test_active_dropout_is_refused_inactive_is_not() -> None:
    model = WideResNet(3, 10, depth=10, widen_factor=1, dropout=0.3).train()
    assert not ReusableForward.supports(model)
    with pytest.raises(NotSupported, match="dropout"):
        ReusableForward(model)
    model.eval()  # F.dropout(training=False): the identity
    x = torch.randn(2, 3, 8, 8)
    rf = ReusableForward(model)
    assert torch.equal(rf(x), model(x))
    tangents = random_tangents(model)
    assert rel_err(rf.tangent(tangents), reference_tangent(model, x, tangents)) < REL32
    seq = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    assert not ReusableForward.supports(seq)
    assert ReusableForward.supports(seq.eval())
