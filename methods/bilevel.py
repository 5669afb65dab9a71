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

**Two routes to the same meta gradient** (`meta_grad`, a hyperparameter of the methods that take it,
so part of the run config and id). ``"unrolled"`` is the reference: g is computed with its graph
and the meta loss is differentiated back through it (a second-order backward through the network).
``"jvp"`` is exact too when φ acts only through the loss head L(z, φ) on the training logits z
(MW-Net, GDW, FaMUS, Dynamic Loss): g(φ) = J_θ zᵀ·∂L/∂z(φ) and the virtual step is linear in g,
so with w = ∂L_meta/∂g (a first-order backward through the meta forward, the virtual step's
momentum and weight decay included) the chain rule gives

    dL_meta/dφ = ∂/∂φ ⟨∂L/∂z(φ), u⟩,   u = J_θ z · w   (one forward-mode Jacobian-vector product),

so no second-order graph through the network is ever built: g is a detached leaf, u comes from
a forward-mode pass of the training forward (the same input, so the same BatchNorm batch statistics,
running statistics untouched whatever `bn` says) that reuses its activations where the backbone traces
(`training_forward`, methods.tangent) and recomputes it with dual tensors otherwise, and the last
derivative runs through the loss head only (logit space). A parameter whose virtual gradient is a constant of the meta
gradient (FaMUS's off layers, `first_order`) gets no tangent. Dropout would draw other masks in
the JVP forward, so a backbone with active dropout is refused on this route.

All per-sample losses and weights stay fp32; the meta step is eager (torch.compile cannot do
double backward, performance.md §2.3).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from bench.core.hparams import Rule
from methods.base import Images, Method, MethodContext
from methods.tangent import NotSupported, ReusableForward

BN_MODES = ("scratch", "real")
#: how the meta gradient is computed (module docstring); "jvp" is the default where it is exact
META_GRADS = ("jvp", "unrolled")


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


def _parameter_sets(params: Mapping[str, Tensor], second_order: Collection[str] | None,
                    first_order: Collection[str]) -> tuple[list[str], list[str]]:
    """(second-order names, first-order names) in `params` order; `second_order=None`: all of them."""
    chosen = set(params) if second_order is None else set(second_order)
    unknown = (chosen | set(first_order)) - set(params)
    if unknown:
        raise KeyError(f"look_ahead: no parameters named {sorted(unknown)}")
    return [n for n in params if n in chosen], [n for n in params if n in set(first_order) and n not in chosen]


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
    second, first = _parameter_sets(params, second_order, first_order)
    grads = virtual_gradients(params, loss, second + first, create_graph=bool(second))
    return fast_weights(params, grads, lr, rule, buffers, constant=first), grads


@dataclass
class LookAhead:
    """A virtual step as the meta step needs it: the fast weights θ̂ and the virtual gradients g.

    On the unrolled route g and θ̂ carry the second-order graph to φ. On the jvp route
    (`look_ahead_jvp`) the g of `tangent_names` are detached leaves that θ̂ is built from, and
    the step also keeps the training forward's input `x` and `head_grad` = ∂L/∂z (attached to φ
    through the loss head only); `meta_gradients_of` turns them into the meta gradient."""

    fast: dict[str, Tensor]
    grads: dict[str, Tensor]
    x: Tensor | None = None
    head_grad: Tensor | None = None
    tangent_names: tuple[str, ...] = ()

    @property
    def route(self) -> str:
        return "unrolled" if self.head_grad is None else "jvp"


def head_gradients(
    params: Mapping[str, Tensor], loss: Tensor, logits: Tensor, names: Collection[str], leaves: Collection[str] = (),
) -> tuple[dict[str, Tensor], Tensor]:
    """(g, ∂loss/∂logits) for the jvp route: ∂loss/∂logits with its graph through the loss head, and
    g = J_θ logitsᵀ·∂loss/∂logits for each of `names`, detached (zeros where unused); the entries of
    `leaves` are made leaves that require grad. The training forward's graph is kept (the actual
    step may reuse it)."""
    unknown = set(names) - set(params)
    if unknown:
        raise KeyError(f"look_ahead: no parameters named {sorted(unknown)}")
    (head_grad,) = torch.autograd.grad(loss, logits, create_graph=True)
    names = list(names)
    raw = torch.autograd.grad(logits, [params[n] for n in names], grad_outputs=head_grad.detach(),
                              retain_graph=True, allow_unused=True)
    grads = {n: torch.zeros_like(params[n]) if g is None else g.detach() for n, g in zip(names, raw)}
    for name in leaves:
        grads[name].requires_grad_(True)
    return grads, head_grad


def look_ahead_jvp(
    params: Mapping[str, Tensor],
    loss: Tensor,
    logits: Tensor,
    x: Tensor,
    lr: float,
    second_order: Collection[str] | None = None,
    first_order: Collection[str] = (),
    rule: VirtualSGD = VirtualSGD(),
    buffers: Mapping[str, Tensor] | None = None,
) -> LookAhead:
    """`look_ahead` on the jvp route: `loss` = L(logits, φ) where `logits` = model(`x`) at θ."""
    second, first = _parameter_sets(params, second_order, first_order)
    grads, head_grad = head_gradients(params, loss, logits, second + first, leaves=second)
    fast = fast_weights(params, grads, lr, rule, buffers, constant=first)
    return LookAhead(fast, grads, x, head_grad, tuple(second))


def logit_tangent(module: nn.Module, params: Mapping[str, Tensor], x: Tensor, tangents: Mapping[str, Tensor]) -> Tensor:
    """u = J_θ module(x) · tangents: the forward-mode derivative of the training forward at θ = `params`
    in the direction `tangents` (parameters not named have none), by dual tensors (cheaper than
    `torch.func.jvp` here). Batch statistics normalise as in the training forward; running statistics
    go to copies."""
    fixed = {n: p.detach() for n, p in params.items() if n not in tangents}
    buffers = dict(module.named_buffers())
    if module.training:
        buffers = {k: b.clone() for k, b in buffers.items()}
    with torch.no_grad(), fwAD.dual_level():
        moved = {n: fwAD.make_dual(params[n].detach(), t.detach()) for n, t in tangents.items()}
        out = functional_call(module, {**fixed, **moved, **buffers}, (x,))
        tangent = fwAD.unpack_dual(out).tangent
    return torch.zeros_like(out) if tangent is None else tangent.clone()


def has_active_dropout(module: nn.Module) -> bool:
    """Whether a forward of `module` in train mode draws dropout masks (nn.Dropout*, or a float
    `dropout` / `drop_rate` attribute > 0 of a block calling F.dropout)."""
    for sub in module.modules():
        if isinstance(sub, nn.modules.dropout._DropoutNd) and sub.p > 0:
            return True
        for attr in ("dropout", "drop_rate"):
            value = getattr(sub, attr, None)
            if isinstance(value, float) and value > 0:
                return True
    return False


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
    #: its training step's logits come from `training_forward` (so the jvp route may reuse that forward)
    trains_through_training_forward: ClassVar[bool] = False

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        super().__init__(ctx, hparams)
        self.params = dict(self.model.named_parameters())
        self.check_meta_grad()
        # the jvp route's tangent pass reuses the training forward's activations where the backbone traces
        # (methods.tangent); with bn="real" the meta forward moves the running statistics it would check
        self._reusable: ReusableForward | None = None
        self._forward_input: Tensor | None = None
        self._bn_before: list[tuple[Tensor, Tensor]] = []  # running statistics to put back (`scratch_bn`)
        jvp = self.hp.get("meta_grad") == "jvp" and self.hp.get("bn") == "scratch"
        if jvp and self.trains_through_training_forward:
            try:  # one trace; a backbone torch.fx cannot trace keeps the recomputing pass
                self._reusable = ReusableForward(self.model)
            except NotSupported:
                pass

    def training_forward(self, x: Tensor, scratch_bn: bool = False) -> Tensor:
        """model(x) of a training step, the same logits, graph and BatchNorm update; on the jvp route through
        `ReusableForward` when the backbone allows, so that the forward-mode pass of `meta_gradients_of`
        reuses this forward's activations instead of recomputing them.

        `scratch_bn`: a look-ahead forward whose running-statistic update must not count (``bn="scratch"``,
        Dynamic Loss's weak view): the statistics are put back once the tangent pass has run."""
        if self._reusable is None:
            return functional_forward(self.model, self.params, x, "scratch") if scratch_bn else self.model(x)
        self._forward_input = x
        self._bn_before = [(b, b.clone()) for b in self.model.buffers()] if scratch_bn else []
        return self._reusable(x)

    def _logit_tangent(self, step: LookAhead, tangents: Mapping[str, Tensor]) -> Tensor:
        """u = J·tangents at the step's training forward: reusing it when it ran through `training_forward`."""
        if self._reusable is not None and step.x is self._forward_input:
            try:
                return self._reusable.tangent(tangents)
            finally:
                self._reusable.clear()
                self._forward_input = None
                with torch.no_grad():
                    for buffer, before in self._bn_before:
                        buffer.copy_(before)
                self._bn_before = []
        return logit_tangent(self.model, self.params, step.x, tangents)

    def meta_loss(self, fast: Mapping[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        """Mean CE of the look-ahead network θ̂ (`fast`) on a meta batch, against its labels."""
        return F.cross_entropy(functional_forward(self.model, fast, x, self.hp["bn"]).float(), y)

    def check_meta_grad(self) -> None:
        """Refuse the jvp route where it would not be exact (active dropout in the backbone)."""
        if self.hp.get("meta_grad") == "jvp" and has_active_dropout(self.model):
            raise ValueError(f"{type(self).__name__}: meta_grad='jvp' needs a backbone without active dropout (its "
                             f"JVP forward would draw other masks); set meta_grad=unrolled or the dropout to 0")

    def look_ahead(
        self, loss: Tensor, logits: Tensor, x: Tensor, rule: VirtualSGD = VirtualSGD(),
        buffers: Mapping[str, Tensor] | None = None, second_order: Collection[str] | None = None,
        first_order: Collection[str] = (),
    ) -> LookAhead:
        """The virtual step on `loss` = L(`logits`, φ), `logits` = model(`x`) at θ, by the run's
        `meta_grad` route (module docstring; `look_ahead` for the arguments)."""
        lr = self.current_lr()
        if self.hp.get("meta_grad", "unrolled") == "jvp":
            return look_ahead_jvp(self.params, loss, logits, x, lr, second_order, first_order, rule, buffers)
        fast, grads = look_ahead(self.params, loss, lr, second_order, first_order, rule, buffers)
        return LookAhead(fast, grads)

    def meta_gradients_of(self, meta_loss: Tensor, inputs: Sequence[Tensor], step: LookAhead | None = None
                          ) -> list[Tensor]:
        """∂ meta_loss / ∂ inputs through the virtual step `step` (zeros for unused inputs).

        Unrolled (or `step` None): one backward through the second-order graph. jvp: w = ∂ meta_loss
        / ∂g for the tangent names and the direct gradients of `inputs` in one first-order backward,
        then u = J·w (`logit_tangent`) and ∂⟨∂L/∂z, u⟩/∂inputs through the loss head."""
        if step is None or step.route == "unrolled":
            return meta_gradients(meta_loss, inputs)
        leaves = [step.grads[n] for n in step.tangent_names]
        outs = torch.autograd.grad(meta_loss, [*leaves, *inputs], allow_unused=True)
        tangents = {n: w for n, w in zip(step.tangent_names, outs[: len(leaves)]) if w is not None}
        u = self._logit_tangent(step, tangents)
        through_head = (step.head_grad * u.to(step.head_grad.dtype)).sum()
        second = torch.autograd.grad(through_head, inputs, allow_unused=True)
        grads = []
        for i, direct, via in zip(inputs, outs[len(leaves):], second):
            total = direct if via is None else via if direct is None else direct + via
            grads.append(torch.zeros_like(i) if total is None else total)
        return grads

    def meta_update(
        self, meta_loss: Tensor, groups: Sequence[tuple[torch.optim.Optimizer, Iterable[nn.Parameter]]],
        also: Sequence[Tensor] = (), step: LookAhead | None = None,
    ) -> list[Tensor]:
        """One backward of `meta_loss` to every group's parameters (through the virtual step `step`,
        by its route) and one step of each group's optimiser; returns the gradients of `also` (e.g.
        GDW's class weights), not stepped."""
        groups = [(optimizer, list(params)) for optimizer, params in groups]
        params = [p for _, group in groups for p in group]
        grads = self.meta_gradients_of(meta_loss, [*params, *also], step)
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
