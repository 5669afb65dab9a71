"""An exact forward-mode Jacobian-vector product of a training forward that reuses its primal values.

The look-ahead methods' ``meta_grad="jvp"`` route (methods/bilevel.py) needs u = J_θ z(θ; x) · w, the
derivative of the training logits z = module(x) in the direction w (one tangent per parameter).
`bilevel.logit_tangent` gets it with dual tensors, which recomputes the whole primal forward next to the
tangent one. `ReusableForward` instead runs the training forward itself, through a `torch.fx` trace of the
module that also hands back (as references, never copies) the primal values a later tangent pass needs,
and `ReusableForward.tangent` then propagates only the tangents, with hand-written linear rules::

    rf = ReusableForward(model)          # raises NotSupported if torch.fx cannot trace the model
    logits = rf(x)                       # == model(x): same values, autograd graph, running-stat update
    ...                                  # backward, meta forward, ... (parameters unchanged)
    u = rf.tangent({"fc.weight": w_fc, "layer3.4.conv2.weight": w_c})   # J·w at the θ, x of rf(x)

Natively handled (no primal recomputation):

* Conv1d/2d/3d (zeros padding) and Linear modules: conv(x, dW) + conv(dx, W) + db, as one call on the input and
  tangent stacked along the input channels when both terms are there (one group);
* BatchNorm1d/2d/3d: in train mode differentiated through the batch mean and variance, as forward-mode AD does:
  γ/σ·(dx − mean(dx) − x̂·mean(dx·x̂)) is BatchNorm's own backward kernel applied to dx (the Jacobian in x is
  symmetric), at the batch statistics the forward saved for its backward (recomputed where it saved none),
  plus dγ·x̂ + dβ; in eval mode the affine map with the running statistics;
* ReLU (module, F.relu, torch.relu, .relu()): ReLU's backward kernel with the saved output as the mask;
* MaxPool2d / F.max_pool2d: the tangent gathered at the argmax of the saved input;
* add/sub (broadcast to the output's shape), mul/div by a constant or a tensor (product and quotient rules);
* the parameter-free linear ops applied to the tangent: view/reshape/flatten/permute/transpose/getitem/
  F.pad (zero padding for the tangent)/cat/stack/sum/mean/avg and adaptive avg pooling/Identity/Flatten/
  inactive dropout, ...; size()/shape/argmax-like results carry none.

Every other node (LayerNorm, GELU, tanh, a reflect-padded conv, ...) falls back to forward-mode AD (dual tensors)
of that node alone at its saved primal inputs, with copies of its buffers taken before the forward. A node none of
whose inputs carries a tangent gets none: no work below the lowest layer with a tangent.

In-place calls of the traced graph (``nn.ReLU(inplace=True)``, ``x.relu_()``, ``F.relu(x, inplace=True)``,
``add_``, ...) run out of place in `ReusableForward.__call__` (same values, one more buffer) so that the primal
values kept for the tangent pass stay intact; later reads of the updated tensor read the new value, as the
in-place call meant. Where that is not exact (an in-place update of the input, a parameter, or a tensor with
views) the module is refused. `tangent` checks the version counters of everything it reads and raises if a kept
activation, a parameter or a buffer was modified in place since the forward.

Memory: the kept values are references to the forward's activations (mostly those autograd keeps for its
backward anyway: conv/BatchNorm inputs, ReLU outputs); they stay alive until the next call or `clear()`.

Limits: the module must be traceable by ``torch.fx.symbolic_trace`` (data-independent control flow), return one
tensor and draw no random numbers (active dropout is refused, as on the dual-tensor route); `NotSupported` says
so at construction (`ReusableForward.supports` asks first), and the caller falls back to `logit_tangent`.
Forward hooks of the top module and of traced-through (non-leaf) submodules do not run. One trace is kept per
combination of the submodules' train/eval modes. On CUDA the cuDNN BatchNorm keeps its statistics in another
form, so they are recomputed there (one reduction per BatchNorm layer).
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.func import functional_call

__all__ = ["NotSupported", "ReusableForward"]


class NotSupported(TypeError):
    """`torch.fx` cannot trace the module, or its graph has a form `ReusableForward` does not take (active dropout,
    an in-place update it cannot rewrite exactly, an output that is not one tensor)."""


# ------------------------------------------------------------------------------------------------
# node classification
# ------------------------------------------------------------------------------------------------

#: ops linear in their first argument, any other argument a constant of the op (shapes, indices, dims)
_LINEAR_FUNCTIONS: set[Any] = {
    torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.squeeze, torch.unsqueeze, torch.narrow,
    torch.movedim, torch.t, torch.chunk, torch.split, torch.unbind, torch.sum, torch.mean, torch.roll,
    torch.flip, torch.diagonal, torch.select, torch.repeat_interleave, operator.getitem, operator.neg, torch.neg,
    F.pad, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.avg_pool1d, F.avg_pool2d,
    F.avg_pool3d, F.pixel_shuffle, F.pixel_unshuffle, F.interpolate,
    *(_DROPOUT_FUNCTIONS := (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
                             F.feature_alpha_dropout)),  # inactive only (active ones are refused)
}
_LINEAR_METHODS = {
    "view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze", "unsqueeze", "expand",
    "expand_as", "view_as", "reshape_as", "mean", "sum", "chunk", "split", "unbind", "narrow", "t", "repeat",
    "movedim", "select", "flip", "roll", "neg", "unflatten", "__getitem__",
}
#: ops linear in each tensor of their first argument, a list (missing tangents are zeros)
_LINEAR_SEQUENCE_FUNCTIONS: set[Any] = {torch.cat, torch.stack, torch.concat, torch.hstack, torch.vstack}
#: results that are no tensors, or constants (no tangent ever)
_CONSTANT_METHODS = {"size", "dim", "numel", "stride", "ndimension", "nelement", "detach", "argmax",
                     "argmin", "ge", "gt", "le", "lt", "eq", "ne", "sign", "long", "int", "bool"}
_CONSTANT_FUNCTIONS: set[Any] = {getattr, len, torch.argmax, torch.argmin, torch.zeros_like, torch.ones_like,
                                 torch.empty_like, torch.sign}
_LINEAR_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
                   nn.AdaptiveAvgPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.ZeroPad2d, nn.PixelShuffle,
                   nn.PixelUnshuffle)
_AFFINE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_ADD = {operator.add, torch.add, operator.sub, torch.sub}
_MUL = {operator.mul, torch.mul, operator.truediv, torch.div}
_DIV = {operator.truediv, torch.div, "div"}
_RELU_FUNCTIONS: set[Any] = {F.relu, torch.relu}
#: in-place calls rewritten to their out-of-place twins in the traced forward
_INPLACE_FUNCTIONS: dict[Any, Any] = {operator.iadd: operator.add, operator.isub: operator.sub,
                                      operator.imul: operator.mul, operator.itruediv: operator.truediv,
                                      torch.relu_: torch.relu}
_INPLACE_METHODS = {"add_": "add", "sub_": "sub", "mul_": "mul", "div_": "div", "relu_": "relu"}


def _is_linear_module(m: nn.Module) -> bool:
    if isinstance(m, _LINEAR_MODULES):
        return True
    if isinstance(m, nn.modules.dropout._DropoutNd):
        return not m.training or m.p == 0
    return False


def _active_dropout(gm: fx.GraphModule, n: fx.Node) -> bool:
    if n.op == "call_module":
        m = gm.get_submodule(n.target)
        return isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0
    if n.op == "call_function" and n.target in _DROPOUT_FUNCTIONS:
        p = n.kwargs.get("p", n.args[1] if len(n.args) > 1 else 0.5)
        training = n.kwargs.get("training", n.args[2] if len(n.args) > 2 else True)
        return not isinstance(p, (int, float)) or not isinstance(training, bool) or (training and p > 0)
    return False


def _is_add(n: fx.Node) -> bool:
    return (n.op == "call_function" and n.target in _ADD) or (n.op == "call_method" and n.target in ("add", "sub"))


def _is_mul(n: fx.Node) -> bool:
    return (n.op == "call_function" and n.target in _MUL) or (n.op == "call_method" and n.target in ("mul", "div"))


def _is_native_module(m: nn.Module) -> bool:
    """Modules with a native tangent rule (no buffers they would need from before the forward)."""
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return m.padding_mode == "zeros"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return type(m).forward is nn.modules.batchnorm._BatchNorm.forward
    return isinstance(m, (nn.Linear, nn.ReLU)) or _is_linear_module(m) or (isinstance(m, nn.MaxPool2d)
                                                                           and not m.return_indices)


_VIEW_FUNCTIONS: set[Any] = {operator.getitem, torch.flatten, torch.reshape, torch.permute, torch.transpose,
                             torch.squeeze, torch.unsqueeze, torch.narrow, torch.movedim, torch.t, torch.chunk,
                             torch.split, torch.unbind, torch.diagonal, torch.select}
_VIEW_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze", "unsqueeze", "expand",
                 "expand_as", "view_as", "reshape_as", "chunk", "split", "unbind", "narrow", "t", "movedim", "select",
                 "unflatten", "detach", "__getitem__"}


def _is_view(n: fx.Node) -> bool:
    """Whether `n` may return a view of (or the same tensor as) its first argument."""
    if n.op == "call_module":
        return isinstance(n.graph.owning_module.get_submodule(n.target), (nn.Identity, nn.Flatten, nn.Unflatten))
    return (n.op == "call_function" and n.target in _VIEW_FUNCTIONS) or (n.op == "call_method"
                                                                        and n.target in _VIEW_METHODS)


def _aliases(node: fx.Node) -> set[fx.Node]:
    """`node`, the tensors it may be a view of, and the views taken of any of them."""
    group, stack = {node}, [node]
    while stack:
        n = stack.pop()
        near = [u for u in n.users if _is_view(u) and u.args and u.args[0] is n]
        if _is_view(n) and n.args and isinstance(n.args[0], fx.Node):
            near.append(n.args[0])
        for m in near:
            if m not in group:
                group.add(m)
                stack.append(m)
    return group


def _in_place(gm: fx.GraphModule, n: fx.Node) -> Any:
    """The out-of-place twin (op, target, kwargs) of an in-place node, None for other nodes."""
    if n.op == "call_module":
        m = gm.get_submodule(n.target)
        if isinstance(m, nn.ReLU) and m.inplace:
            return "call_function", torch.relu, n.kwargs
    elif n.op == "call_function" and n.target in _RELU_FUNCTIONS and n.kwargs.get("inplace"):
        return "call_function", n.target, {**n.kwargs, "inplace": False}
    elif n.op == "call_function" and n.target in _INPLACE_FUNCTIONS:
        return "call_function", _INPLACE_FUNCTIONS[n.target], n.kwargs
    elif n.op == "call_method" and n.target in _INPLACE_METHODS:
        return "call_method", _INPLACE_METHODS[n.target], n.kwargs
    return None


def _out_of_place(gm: fx.GraphModule) -> None:
    """Rewrite the in-place calls (ReLU(inplace=True), relu_, add_, ...) into out-of-place ones, so that the values
    the tangent pass reads stay intact; later reads of the updated tensor read the new node instead (what the
    in-place call meant). Refused (NotSupported) where that is not exact: an in-place update of the input, of a
    parameter or buffer, or of a tensor that has views read later."""
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for node in list(gm.graph.nodes):
        twin = _in_place(gm, node)
        if twin is None:
            continue
        target = node.args[0] if node.args else None
        if not isinstance(target, fx.Node):
            continue
        group = _aliases(target)
        if any(g.op in ("placeholder", "get_attr") for g in group):
            raise NotSupported(f"{node.name} updates an input, parameter or buffer in place")
        later = [(g, u) for g in group for u in g.users if order[u] > order[node]]
        if later and group != {target}:
            raise NotSupported(f"{node.name} updates in place a tensor whose views are read later")
        for _, user in later:
            user.replace_input_with(target, node)
        node.op, node.target, node.kwargs = twin


# ------------------------------------------------------------------------------------------------
# tangent rules: each takes (node, primal, tangent) -> tangent or None
# ------------------------------------------------------------------------------------------------

Lookup = Callable[[Any], Any]


def _map(arg: Any, fn: Callable[[fx.Node], Any]) -> Any:
    return fx.node.map_arg(arg, fn)


def _has_tangent(node: fx.Node, tan: Lookup) -> bool:
    found = False

    def probe(n: fx.Node) -> None:
        nonlocal found
        found = found or tan(n) is not None

    fx.node.map_arg((node.args, node.kwargs), probe)
    return found


def _param_tangents(module: nn.Module, prefix: str, tangents: Mapping[str, Tensor], recurse: bool = True
                    ) -> dict[str, Tensor]:
    head = f"{prefix}." if prefix else ""
    return {n: tangents[head + n] for n, _ in module.named_parameters(recurse=recurse) if head + n in tangents}


def _tree_tangent(value: Any) -> Any:
    """The tangents of a fallback node's output (a tensor or a tuple/list of them; None where there is none)."""
    if isinstance(value, Tensor):
        t = fwAD.unpack_dual(value).tangent
        return None if t is None else t.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_tree_tangent(v) for v in value)
    return None


def _conv_like(fn: Callable[..., Tensor], x: Tensor, tx: Tensor | None, weight: Tensor, dw: Tensor | None,
               db: Tensor | None, bias_shape: tuple[int, ...], out_shape: torch.Size, **kw: Any) -> Tensor | None:
    """conv(x, dW) + conv(dx, W) + db for a map `fn` linear in its input and in its weight. With both terms (and
    one group) it is one call on the inputs and weights stacked along the input channels, which oneDNN runs
    faster than two calls on the narrow layers of a CIFAR network."""
    if dw is not None and tx is not None and kw.get("groups", 1) == 1:
        return fn(torch.cat([x, tx], 1), torch.cat([dw, weight], 1), db, **kw)
    out: Tensor | None = None
    if dw is not None:
        out = fn(x, dw, db, **kw)
        db = None
    if tx is not None:
        part = fn(tx, weight, None, **kw)
        out = part if out is None else out.add_(part)
    if db is not None:  # only a bias tangent: broadcast to the output shape
        out = db.view(bias_shape).expand(out_shape).contiguous() if out is None else out.add_(db.view(bias_shape))
    return out


def _conv_rule(m: nn.Module, x: Tensor, tx: Tensor | None, pt: Mapping[str, Tensor], out_shape: torch.Size
               ) -> Tensor | None:
    fn = F.conv1d if isinstance(m, nn.Conv1d) else F.conv3d if isinstance(m, nn.Conv3d) else F.conv2d
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return _conv_like(fn, x, tx, m.weight, pt.get("weight"), pt.get("bias"), shape, out_shape, stride=m.stride,
                      padding=m.padding, dilation=m.dilation, groups=m.groups)


def _linear_rule(m: nn.Linear, x: Tensor, tx: Tensor | None, pt: Mapping[str, Tensor], out_shape: torch.Size
                 ) -> Tensor | None:
    return _conv_like(F.linear, x, tx, m.weight, pt.get("weight"), pt.get("bias"), (-1,), out_shape)


def _bn_stats(out: Tensor) -> tuple[Tensor, Tensor] | None:
    """The batch mean and 1/σ a train-mode BatchNorm forward saved for its backward (None if it saved none)."""
    fn = out.grad_fn
    if type(fn).__name__ != "NativeBatchNormBackward0" or not fn._saved_training:
        return None
    return fn._saved_result1, fn._saved_result2



def _batch_norm_rule(m: nn.modules.batchnorm._BatchNorm, x: Tensor, tx: Tensor | None,
                     pt: Mapping[str, Tensor], stats: tuple[Tensor, Tensor] | None) -> Tensor | None:
    """y = γ·(x − μ)/σ + β. Train mode (batch statistics, biased variance): the input part of the tangent is
    γ/σ·(dx − mean(dx) − x̂·mean(dx·x̂)), which is BatchNorm's own backward applied to dx (its Jacobian in x
    is symmetric), plus dγ·x̂ + dβ."""
    dgamma, dbeta = pt.get("weight"), pt.get("bias")
    shape = (1, -1) + (1,) * (x.dim() - 2)
    gamma = m.weight if m.affine else None
    if m.training or m.running_mean is None:
        if stats is None:
            var, mean = torch.var_mean(x, dim=[0] + list(range(2, x.dim())), unbiased=False)
            stats = mean, torch.rsqrt(var + m.eps)
        mean, invstd = stats
        out: Tensor | None = None
        if tx is not None:
            out = torch.ops.aten.native_batch_norm_backward(tx, x, gamma, None, None, mean, invstd, True, m.eps,
                                                            [True, False, False])[0]
        if dgamma is not None or dbeta is not None:  # dγ·x̂ + dβ = b·x + c
            b = dgamma * invstd if dgamma is not None else torch.zeros_like(mean)
            c = -b * mean if dbeta is None else dbeta - b * mean
            if out is None:
                out = torch.addcmul(c.view(shape), x, b.view(shape))
            else:
                out = out.addcmul_(x, b.view(shape)).add_(c.view(shape))
        return out
    invstd = torch.rsqrt(m.running_var + m.eps)
    out = None
    if tx is not None:
        out = tx * (invstd if gamma is None else gamma * invstd).view(shape)
    if dgamma is not None:
        part = (x - m.running_mean.view(shape)) * (dgamma * invstd).view(shape)
        out = part if out is None else out.add_(part)
    if dbeta is not None:
        out = dbeta.view(shape).expand_as(x).clone() if out is None else out.add_(dbeta.view(shape))
    return out


def _relu_rule(out: Tensor, t: Tensor) -> Tensor:
    return torch.ops.aten.threshold_backward(t, out, 0)  # t where out > 0, else 0 (ReLU's own backward)


def _max_pool_rule(x: Tensor, t: Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    kwargs = {**kwargs, "return_indices": True}
    out, idx = F.max_pool2d(x, *args, **kwargs)
    return t.flatten(-2).gather(-1, idx.flatten(-2)).view_as(out)


# ------------------------------------------------------------------------------------------------
# the wrapper
# ------------------------------------------------------------------------------------------------


class _Plan:
    """One traced graph (for one train/eval mode) and what its tangent pass needs."""

    def __init__(self, module: nn.Module) -> None:
        try:
            gm = fx.symbolic_trace(module)
        except Exception as exc:  # torch.fx raises many types (TraceError, TypeError, RuntimeError, ...)
            raise NotSupported(f"torch.fx cannot trace {type(module).__name__}: {type(exc).__name__}: {exc}") from exc
        _out_of_place(gm)
        nodes = list(gm.graph.nodes)
        out_node = nodes[-1]
        if out_node.op != "output" or not isinstance(out_node.args[0], fx.Node):
            raise NotSupported(f"{type(module).__name__} does not return one tensor")
        for n in nodes:
            if _active_dropout(gm, n):
                raise NotSupported(f"{n.name}: active dropout draws a new mask on every call")
        self.result = out_node.args[0]
        self.nodes = [n for n in nodes if n.op != "output"]
        needed: dict[fx.Node, None] = {self.result: None}
        self.shape_of: dict[fx.Node, fx.Node] = {}  # add/sub/conv/linear node -> its output shape (broadcasting)
        self.stats_of: dict[fx.Node, fx.Node] = {}  # BatchNorm node -> its saved batch statistics
        self.fallback_modules: list[str] = []  # their buffers are snapshot before the forward (train mode)
        for n in self.nodes:
            for dep in self._needs(gm, n):
                needed[dep] = None
            if _is_add(n) or (n.op == "call_module" and isinstance(gm.get_submodule(n.target), _AFFINE)):
                with gm.graph.inserting_after(n):
                    self.shape_of[n] = gm.graph.call_function(getattr, (n, "shape"))
                needed[self.shape_of[n]] = None
            if n.op == "call_module" and isinstance(gm.get_submodule(n.target), nn.modules.batchnorm._BatchNorm):
                with gm.graph.inserting_after(n):
                    self.stats_of[n] = gm.graph.call_function(_bn_stats, (n,))
                needed[self.stats_of[n]] = None
            if n.op == "call_module" and not _is_native_module(gm.get_submodule(n.target)):
                self.fallback_modules.append(n.target)
        self.saved = list(needed)
        gm.graph.erase_node(out_node)
        gm.graph.output((self.result, tuple(self.saved)))
        gm.recompile()
        self.gm = gm
        # free each tangent after its last reader
        last: dict[fx.Node, fx.Node] = {}
        for n in self.nodes:
            fx.node.map_arg((n.args, n.kwargs), lambda a, n=n: last.__setitem__(a, n))
        self.release: dict[fx.Node, list[fx.Node]] = {}
        for a, n in last.items():
            if a is not self.result:
                self.release.setdefault(n, []).append(a)

    @staticmethod
    def _needs(gm: fx.GraphModule, n: fx.Node) -> list[fx.Node]:
        """The nodes whose primal values the tangent rule of `n` reads."""
        args: list[fx.Node] = []
        fx.node.map_arg((n.args, n.kwargs), args.append)
        if n.op == "call_module":
            m = gm.get_submodule(n.target)
            if isinstance(m, nn.ReLU):
                return [n]
            if _is_linear_module(m):
                return []
            return args
        if n.op == "call_function" and n.target in _RELU_FUNCTIONS:
            return [n]
        if n.op == "call_method" and n.target == "relu":
            return [n]
        if _is_add(n):
            return [a for a in args if a not in n.args[:2]] if len(n.args) >= 2 else args
        if _is_mul(n) and len(n.args) == 2:  # a·b, a/b: each operand only for the other's tangent (and b for /)
            a, b = n.args
            keep = [a] if isinstance(b, fx.Node) else []
            if isinstance(b, fx.Node) and (isinstance(a, fx.Node) or n.target in _DIV):
                keep.append(b)
            return keep + [x for x in args if x not in (a, b)]
        if (n.op == "call_method" and n.target in _CONSTANT_METHODS) or \
                (n.op == "call_function" and n.target in _CONSTANT_FUNCTIONS):
            return []
        if n.op in ("call_function", "call_method") and n.target in (_LINEAR_FUNCTIONS | _LINEAR_METHODS):
            first = n.args[0] if n.args else None
            return [a for a in args if a is not first]
        if n.op in ("placeholder", "get_attr"):
            return []
        return args


class ReusableForward:
    """Wraps a backbone: ``rf(x)`` returns module(x) (same values and autograd graph, BatchNorm running
    statistics updated once, as module(x) would) and keeps references to what `tangent` needs.

    Raises `NotSupported` at construction when ``torch.fx.symbolic_trace`` cannot trace the module (check
    first with `ReusableForward.supports`); the caller then falls back to `methods.bilevel.logit_tangent`.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._plans: dict[tuple[bool, ...], _Plan] = {}  # one trace per combination of the modules' modes
        self._plan(self._modes())
        self._last: tuple[_Plan, dict[fx.Node, Any], list[tuple[Tensor, int]], dict[str, Tensor], tuple[bool, ...]
                          ] | None = None

    @classmethod
    def supports(cls, module: nn.Module) -> bool:
        """Whether `module` can be wrapped (it traces, in its current mode, and returns one tensor)."""
        try:
            _Plan(module)
        except NotSupported:
            return False
        return True

    def _plan(self, modes: tuple[bool, ...]) -> _Plan:
        plan = self._plans.get(modes)
        if plan is None:
            plan = self._plans[modes] = _Plan(self.module)
        return plan

    def _modes(self) -> tuple[bool, ...]:
        return tuple(m.training for m in self.module.modules())

    def __call__(self, x: Tensor) -> Tensor:
        modes = self._modes()
        plan = self._plan(modes)
        self._last = None  # drop the previous forward's references before this one allocates
        buffers: dict[str, Tensor] = {}
        if self.module.training:
            for target in plan.fallback_modules:
                sub = self.module.get_submodule(target)
                buffers.update({f"{target}.{n}": b.clone() for n, b in sub.named_buffers()})
        out, saved = plan.gm(x)
        values = dict(zip(plan.saved, saved))
        watched = [(v, v._version) for v in saved if isinstance(v, Tensor)]
        watched += [(p, p._version) for p in self.module.parameters()]
        watched += [(b, b._version) for b in self.module.buffers()]
        self._last = (plan, values, watched, buffers, modes)
        return out

    def clear(self) -> None:
        """Drop the references to the last forward's activations (memory) before the next call."""
        self._last = None

    @torch.no_grad()
    def tangent(self, tangents: Mapping[str, Tensor], input_tangent: Tensor | None = None) -> Tensor:
        """u = J·w: the forward-mode derivative of the last ``rf(x)`` at its parameters and input, in the
        direction `tangents` (by parameter name; names left out have none) and `input_tangent` (of x).
        Exact: the same batch statistics as that forward, BatchNorm in train mode differentiated through
        them. Changes no buffer. Raises RuntimeError if a value it reads changed since that forward."""
        if self._last is None:
            raise RuntimeError("ReusableForward.tangent needs a forward first (rf(x))")
        plan, values, watched, buffers, modes = self._last
        if modes != self._modes():
            raise RuntimeError("the module's train/eval modes changed since the forward; run it again")
        for tensor, version in watched:
            if tensor._version != version:
                raise RuntimeError("a parameter, buffer or activation of the last forward was modified in place "
                                   "since; run the forward again before ReusableForward.tangent")
        params = dict(self.module.named_parameters())
        unknown = [n for n in tangents if n not in params]
        if unknown:
            raise KeyError(f"no parameters named {unknown[:3]}")
        moved = {name.rsplit(".", k)[0] for name in tangents for k in range(1, name.count(".") + 1)}
        tan: dict[fx.Node, Any] = {}
        get_tan = tan.get

        def primal(n: fx.Node) -> Any:
            return values[n]

        for node in plan.nodes:
            t = None
            if node.op == "placeholder":
                t = input_tangent
            elif node.op == "get_attr":
                t = tangents.get(node.target)
            elif (node.op == "call_module" and node.target in moved) or _has_tangent(node, get_tan):
                t = self._rule(plan, node, primal, get_tan, tangents, buffers)
            if t is not None:
                tan[node] = t
            for done in plan.release.get(node, ()):
                tan.pop(done, None)
        out = tan.get(plan.result)
        return torch.zeros_like(values[plan.result]) if out is None else out

    def _rule(self, plan: _Plan, node: fx.Node, primal: Lookup, tan: Lookup, tangents: Mapping[str, Tensor],
              buffers: Mapping[str, Tensor]) -> Any:
        op, target = node.op, node.target
        args, kwargs = node.args, node.kwargs
        if op == "call_module":
            m = plan.gm.get_submodule(target)
            pt = _param_tangents(m, target, tangents)
            a0 = args[0] if args else None
            if not args or len(args) + len(kwargs) != 1 or not isinstance(a0, fx.Node):
                return self._fallback(node, m, primal, tan, tangents, buffers)
            tx = tan(a0)
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and m.padding_mode == "zeros":
                return _conv_rule(m, primal(a0), tx, pt, primal(plan.shape_of[node]))
            if isinstance(m, nn.Linear):
                return _linear_rule(m, primal(a0), tx, pt, primal(plan.shape_of[node]))
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and _is_native_module(m):
                stats = primal(plan.stats_of[node]) if node in plan.stats_of else None
                return _batch_norm_rule(m, primal(a0), tx, pt, stats)
            if isinstance(m, nn.ReLU):
                return _relu_rule(primal(node), tx)
            if _is_linear_module(m):
                return m(tx)
            if isinstance(m, nn.MaxPool2d) and not m.return_indices:
                return _max_pool_rule(primal(a0), tx, (m.kernel_size, m.stride, m.padding, m.dilation),
                                      {"ceil_mode": m.ceil_mode})
            return self._fallback(node, m, primal, tan, tangents, buffers)
        if (op == "call_method" and target in _CONSTANT_METHODS) or \
                (op == "call_function" and target in _CONSTANT_FUNCTIONS):
            return None
        if (op == "call_function" and target in _RELU_FUNCTIONS) or (op == "call_method" and target == "relu"):
            return _relu_rule(primal(node), tan(args[0]))
        if op == "call_function" and target is F.max_pool2d and not kwargs.get("return_indices", False) \
                and len(args) < 7:
            return _max_pool_rule(primal(args[0]), tan(args[0]), tuple(_map(args[1:], primal)),
                                  dict(_map(kwargs, primal)))
        if (op == "call_function" and target in _ADD) or (op == "call_method" and target in ("add", "sub")):
            return self._add_rule(node, primal, tan, plan.shape_of)
        if _is_mul(node) and len(args) == 2:
            return self._mul_rule(node, primal, tan)
        if op in ("call_function", "call_method") and target in (_LINEAR_FUNCTIONS | _LINEAR_METHODS):
            first = args[0]
            tf = tan(first) if isinstance(first, fx.Node) else None
            if tf is None:  # a tangent in another argument (a shape for expand_as, an index): constant there
                return None
            rest, kw = _map(args[1:], primal), dict(_map(kwargs, primal))
            if target is F.pad:
                kw.pop("value", None)
                rest = rest[:2]  # (pad, mode): constant padding pads the tangent with zeros
            if op == "call_method":
                return getattr(tf, target)(*rest, **kw)
            return target(tf, *rest, **kw)
        if op == "call_function" and target in _LINEAR_SEQUENCE_FUNCTIONS and isinstance(args[0], (list, tuple)):
            parts = [tan(a) if isinstance(a, fx.Node) else None for a in args[0]]
            parts = [p if p is not None else torch.zeros_like(primal(a)) for p, a in zip(parts, args[0])]
            return target(parts, *_map(args[1:], primal), **dict(_map(kwargs, primal)))
        return self._fallback(node, None, primal, tan, tangents, buffers)

    @staticmethod
    def _add_rule(node: fx.Node, primal: Lookup, tan: Lookup, shape_of: Mapping[fx.Node, fx.Node]) -> Tensor | None:
        a, b = node.args[0], node.args[1]
        ta = tan(a) if isinstance(a, fx.Node) else None
        tb = tan(b) if isinstance(b, fx.Node) else None
        alpha = node.kwargs.get("alpha", 1)
        alpha = primal(alpha) if isinstance(alpha, fx.Node) else alpha
        sign = -1 if node.target in (operator.sub, torch.sub, "sub") else 1
        if tb is not None and (sign != 1 or alpha != 1):
            tb = tb * (sign * alpha)
        if ta is None:
            out = tb
        elif tb is None:
            out = ta
        else:
            out = ta + tb
        if out is not None and node in shape_of:
            shape = primal(shape_of[node])
            if out.shape != shape:
                out = out.expand(shape)
        return out

    @staticmethod
    def _mul_rule(node: fx.Node, primal: Lookup, tan: Lookup) -> Tensor | None:
        a, b = node.args

        def value(v: Any) -> Any:
            return primal(v) if isinstance(v, fx.Node) else v

        ta = tan(a) if isinstance(a, fx.Node) else None
        tb = tan(b) if isinstance(b, fx.Node) else None
        if node.target in _DIV:
            if node.kwargs.get("rounding_mode") is not None:
                return None  # piecewise constant
            pb = value(b)
            out = None if ta is None else ta / pb
            if tb is not None:  # d(a/b) = da/b − a·db/b²
                part = -(value(a) * tb) / (pb * pb)
                out = part if out is None else out + part
            return out
        out = None if ta is None else ta * value(b)
        if tb is not None:
            part = value(a) * tb
            out = part if out is None else out + part
        return out

    def _fallback(self, node: fx.Node, module: nn.Module | None, primal: Lookup, tan: Lookup,
                  tangents: Mapping[str, Tensor], buffers: Mapping[str, Tensor]) -> Any:
        """Forward-mode AD (dual tensors) of this node alone at its saved primal inputs."""
        slots: list[fx.Node] = []

        def slot(n: fx.Node) -> Any:
            t = tan(n)
            if isinstance(t, Tensor):
                slots.append(n)
            return n

        fx.node.map_arg((node.args, node.kwargs), slot)
        slots = list(dict.fromkeys(slots))
        p_names: list[str] = []
        if module is not None:
            prefix = f"{node.target}."
            p_names = [n for n, _ in module.named_parameters() if prefix + n in tangents]
        primals = tuple(primal(n) for n in slots) + tuple(module.get_parameter(n) for n in p_names)
        tans = tuple(tan(n) for n in slots) + tuple(tangents[f"{node.target}.{n}"] for n in p_names)
        if not primals:
            return None

        with fwAD.dual_level():
            vals = [fwAD.make_dual(p.detach(), t) for p, t in zip(primals, tans)]
            sub = dict(zip(slots, vals[: len(slots)]))
            args, kwargs = _map((node.args, node.kwargs), lambda n: sub[n] if n in sub else primal(n))
            if module is not None:
                prefix = f"{node.target}."
                state = {n: b.clone() for n, b in module.named_buffers()}
                state.update({n[len(prefix):]: b.clone() for n, b in buffers.items() if n.startswith(prefix)})
                state.update(zip(p_names, vals[len(slots):]))
                out = functional_call(module, state, args, kwargs)
            elif node.op == "call_method":
                out = getattr(args[0], node.target)(*args[1:], **kwargs)
            else:
                out = node.target(*args, **kwargs)
            return _tree_tangent(out)
