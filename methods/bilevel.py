"""The shared bi-level (look-ahead) machinery of MW-Net, GDW, FaMUS, FSR and Dynamic Loss.

One iteration of these methods is (methods.md §0.3):

1. **virtual step**: a training loss that depends on meta-parameters φ, its gradient g with
   respect to the classifier θ (`create_graph=True`), and fast weights θ̂(φ) = θ − α·step(g);
2. **meta step**: a loss of θ̂ on meta data, differentiated back to φ through g (second order);
3. **actual step**: an ordinary update of θ with the updated φ.

Everything here works on one ordinary `nn.Module` through `torch.func.functional_call`: no
model copy per iteration and no "Meta" layer twins (methods.md §1.1, performance.md §2.2).

`look_ahead` takes three sets of parameter names:

* ``second_order``: moved by the virtual step, and the meta gradient flows through them
  (all parameters for MW-Net/GDW/Dynamic Loss; the learned subset for FaMUS; the FC for FSR);
* ``first_order``: moved by the virtual step with a detached gradient, so they are constants
  of the meta gradient (FaMUS's layers whose sampler is off);
* every other parameter: left at θ (detached); its gradient is not computed at all.

BatchNorm in the virtual and meta forwards: `functional_forward` runs the module in its current
mode (train mode during training, so batch statistics normalise, as in the official code's
throw-away copy). With ``bn="scratch"`` (the default) running-statistic updates go to copies of
the buffers, so only the actual step updates the real model's statistics (MW-Net's behaviour,
methods.md §5.3). ``bn="real"`` lets the look-ahead forwards update the real buffers, as the
`higher`-based Dynamic Loss code probably does (§10.5).

All per-sample losses and weights stay fp32; the meta step is eager (torch.compile cannot do
double backward, performance.md §2.3).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from bench.core.hparams import Rule
from methods.base import Images, Method, MethodContext

BN_MODES = ("scratch", "real")


@dataclass(frozen=True)
class VirtualSGD:
    """The update rule of the virtual step.

    The default is plain SGD, θ̂ = θ − α·g (MW-Net §5.1, GDW §7.1). With momentum and weight
    decay it is a differentiable copy of `torch.optim.SGD` continuing from the real optimiser's
    momentum buffers (Dynamic Loss's `higher` inner loop, §10.3; FSR's meta momentum, §8.1):
    d = g + wd·θ;  b = μ·b_prev + d (b = d without a previous buffer);  θ̂ = θ − α·(d + μ·b if
    nesterov else b).
    """

    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    @classmethod
    def like(cls, optimizer: torch.optim.Optimizer) -> VirtualSGD:
        """The rule of `optimizer`'s first parameter group (an SGD without dampening)."""
        group = optimizer.param_groups[0]
        if group.get("dampening", 0.0):
            raise ValueError("VirtualSGD does not model SGD dampening")
        return cls(group.get("momentum", 0.0), group.get("weight_decay", 0.0), group.get("nesterov", False))

    def direction(self, param: Tensor, grad: Tensor, buffer: Tensor | None) -> Tensor:
        """The update direction for one parameter (differentiable in `grad`)."""
        d = grad + self.weight_decay * param if self.weight_decay else grad
        if not self.momentum:
            return d
        b = d if buffer is None else self.momentum * buffer + d
        return d + self.momentum * b if self.nesterov else b


def momentum_buffers(optimizer: torch.optim.Optimizer, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The optimiser's momentum buffers by parameter name (detached; missing before step 1)."""
    out = {}
    for name, p in params.items():
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            out[name] = buf.detach()
    return out


def virtual_gradients(
    params: Mapping[str, Tensor], loss: Tensor, names: Collection[str], create_graph: bool = True,
) -> dict[str, Tensor]:
    """∂loss/∂params[name] for each of `names` (zeros where unused), graph kept if `create_graph`."""
    unknown = set(names) - set(params)
    if unknown:
        raise KeyError(f"look_ahead: no parameters named {sorted(unknown)}")
    names = list(names)
    raw = torch.autograd.grad(loss, [params[n] for n in names], create_graph=create_graph, allow_unused=True)
    return {n: torch.zeros_like(params[n]) if g is None else g for n, g in zip(names, raw)}


def fast_weights(
    params: Mapping[str, Tensor], grads: Mapping[str, Tensor], lr: float, rule: VirtualSGD = VirtualSGD(),
    buffers: Mapping[str, Tensor] | None = None, constant: Collection[str] = (),
) -> dict[str, Tensor]:
    """θ̂ = θ − α·step(g) for every name in `grads` (detached for names in `constant`); every
    other parameter stays at θ, detached. `buffers` are the momentum buffers of `rule`."""
    buffers = buffers or {}
    fast = {}
    for name, p in params.items():
        if name not in grads:
            fast[name] = p.detach()
            continue
        moved = p - lr * rule.direction(p, grads[name], buffers.get(name))
        fast[name] = moved.detach() if name in constant else moved
    return fast


def look_ahead(
    params: Mapping[str, Tensor],
    loss: Tensor,
    lr: float,
    second_order: Collection[str] | None = None,
    first_order: Collection[str] = (),
    rule: VirtualSGD = VirtualSGD(),
    buffers: Mapping[str, Tensor] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Fast weights θ̂ after one virtual step on `loss`, and the virtual gradients.

    `params` maps names to the live parameters; `second_order=None` means all of them.
    Returns ``(fast, grads)``: `fast` has an entry for every name in `params`; `grads` holds
    the virtual gradient (still attached to the graph) of each second- and first-order name.
    `buffers` are the momentum buffers of `rule`. Methods that must see every gradient before
    choosing the sets (FaMUS) call `virtual_gradients` and `fast_weights` themselves.
    """
    chosen = set(params) if second_order is None else set(second_order)
    second = [n for n in params if n in chosen]
    first = [n for n in params if n in set(first_order) and n not in chosen]
    unknown = (chosen | set(first_order)) - set(params)
    if unknown:
        raise KeyError(f"look_ahead: no parameters named {sorted(unknown)}")
    grads = virtual_gradients(params, loss, second + first, create_graph=bool(second))
    return fast_weights(params, grads, lr, rule, buffers, constant=first), grads


def functional_forward(module: nn.Module, fast: Mapping[str, Tensor], x: Tensor, bn: str = "scratch") -> Tensor:
    """`module(x)` evaluated at the parameters `fast` (see the module docstring for `bn`)."""
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
    buffers = dict(module.named_buffers())
    if bn == "scratch" and module.training:
        buffers = {k: b.clone() for k, b in buffers.items()}
    return functional_call(module, {**fast, **buffers}, (x,))


def meta_gradients(meta_loss: Tensor, inputs: Collection[Tensor]) -> list[Tensor]:
    """∂ meta_loss / ∂ inputs (second order through the look-ahead); zeros for unused inputs."""
    inputs = list(inputs)
    grads = torch.autograd.grad(meta_loss, inputs, allow_unused=True)
    return [torch.zeros_like(i) if g is None else g for i, g in zip(inputs, grads)]


def apply_gradients(
    optimizer: torch.optim.Optimizer, params: Collection[nn.Parameter], grads: Collection[Tensor],
) -> None:
    """Set `.grad` of `params` to `grads` and take one step of `optimizer`."""
    for p, g in zip(params, grads):
        p.grad = g.detach()
    optimizer.step()


class BilevelMethod(Method):
    """Base of the look-ahead methods: the live parameters by name, the meta loss of fast
    weights, and the meta update. Their backbone is called functionally, so it stays eager."""

    compilable: ClassVar[bool] = False
    hparam_rules: ClassVar[Mapping[str, Rule]] = {"bn": BN_MODES}

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        self.params = dict(self.model.named_parameters())

    def meta_loss(self, fast: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        """Mean CE of the look-ahead network θ̂ (`fast`) on a meta batch, against its labels."""
        return F.cross_entropy(functional_forward(self.model, fast, x, self.hp["bn"]).float(), y)

    def meta_update(
        self, meta_loss: Tensor, groups: Sequence[tuple[torch.optim.Optimizer, Iterable[nn.Parameter]]],
        also: Sequence[Tensor] = (),
    ) -> list[Tensor]:
        """One backward of `meta_loss` to every group's parameters and one step of each group's
        optimiser; returns the gradients of `also` (e.g. GDW's class weights), not stepped."""
        groups = [(optimizer, list(params)) for optimizer, params in groups]
        params = [p for _, group in groups for p in group]
        grads = meta_gradients(meta_loss, [*params, *also])
        start = 0
        for optimizer, group in groups:
            if group:
                apply_gradients(optimizer, group, grads[start : start + len(group)])
            start += len(group)
        return grads[len(params):]


class MetaSampler:
    """Batches from a fixed set of images (a trusted meta set, Dynamic Loss's per-epoch meta set).

    ``mode="cycle"`` walks a fresh permutation and restarts it when exhausted, keeping the last
    partial batch (MW-Net's noise script); ``mode="random"`` draws a new random subset every
    call (`next(iter(loader))`, MW-Net's LT and WRN scripts). Images are augmented with the
    run's train-time transform when `augment` is True.

    `state_dict` holds the cycle's permutation and position, so a run resumed from a checkpoint
    draws the same meta batches as an uninterrupted one (the random draws come from `generator`,
    which the engine saves itself).
    """

    MODES = ("cycle", "random")

    def __init__(
        self, images: Images, y: Tensor, batch_size: int, generator: torch.Generator, mode: str = "cycle",
        augment: bool = True,
    ) -> None:
        if mode not in self.MODES:
            raise ValueError(f"meta sampling mode must be one of {self.MODES}, got {mode!r}")
        if len(y) == 0:
            raise ValueError("the meta set is empty")
        self.images, self.y = images, y
        self.batch_size = min(batch_size, len(y))
        self.generator = generator
        self.mode = mode
        self.augment = augment
        self._order: Tensor | None = None
        self._pos = 0

    def state_dict(self) -> dict[str, Tensor]:
        """The current permutation (empty before the first draw) and the position in it."""
        order = self._order if self._order is not None else torch.empty(0, dtype=torch.long)
        return {"order": order.detach().clone(), "pos": torch.tensor(self._pos, dtype=torch.long)}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Continue from `state` (a `state_dict` of a sampler over the same meta set)."""
        order = torch.as_tensor(state["order"])
        if order.numel() not in (0, len(self.y)):
            raise ValueError(f"meta sampler state has an order of {order.numel()} samples, the meta set {len(self.y)}")
        self._order = order.to(self.y.device, torch.long).clone() if order.numel() else None
        self._pos = int(state["pos"])

    def _permutation(self) -> Tensor:
        return torch.randperm(len(self.y), generator=self.generator).to(self.y.device)

    def next_indices(self) -> Tensor:
        if self.mode == "random":
            return self._permutation()[: self.batch_size]
        if self._order is None or self._pos >= len(self._order):
            self._order, self._pos = self._permutation(), 0
        index = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return index

    def next(self) -> tuple[Tensor, Tensor]:
        """One (images, labels) batch."""
        index = self.next_indices()
        x = self.images.batch(index, train=self.augment, generator=self.generator)
        return x, self.y[index]
